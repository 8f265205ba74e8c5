"""Storage backends: the Store protocol, the SQL store, artifact repositories."""
