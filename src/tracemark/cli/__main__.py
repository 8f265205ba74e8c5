"""`python -m tracemark.cli` runs the command line."""

from tracemark.cli import main

main()
