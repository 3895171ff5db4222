import subprocess
import sys


def test_core_imports_without_ray():
    # The training core must not pull Ray in: it runs inside Ray workers and without Ray alike.
    code = (
        "import sys, importlib, pkgutil, mmse_model\n"
        "for m in pkgutil.walk_packages(mmse_model.__path__, 'mmse_model.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'ray' or n.startswith('ray.'))\n"
        "print(len(list(pkgutil.walk_packages(mmse_model.__path__))))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 8
