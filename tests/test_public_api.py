import subprocess
import sys

import tracemark


def test_import_loads_nothing_heavy():
    code = (
        "import sys, tracemark; heavy = [m for m in ('sqlalchemy', 'pandas', 'alembic', "
        "'fastapi', 'opentelemetry', 'numpy') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_is_sorted_and_resolves():
    assert tracemark.__all__ == sorted(tracemark.__all__)
    for name in tracemark.__all__:
        assert getattr(tracemark, name) is not None, name


def test_every_lazy_name_is_public():
    assert set(tracemark._LAZY) == set(tracemark.__all__) - {"__version__"}
