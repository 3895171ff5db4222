"""Three layers, imports one way (docs/design.md, "Layers"): checked on the import graph."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    # pyproject.toml's three contracts: mmse_app -> ray_jobs -> mmse_model, the core's subpackages
    # in their order, and no Ray in the core.
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_the_graph_sees_imports_made_inside_functions():
    # mmse_app.cli imports ray_jobs.sweep only inside a function: the contracts see it, so an
    # import hidden in a function body cannot slip past them.
    import grimp

    graph = grimp.build_graph("mmse_app", "ray_jobs", "mmse_model")
    assert (
        "import ray_jobs"
        not in (REPO / "mmse_app" / "cli.py").read_text().split("def build_parser")[0]
    )
    assert graph.direct_import_exists(importer="mmse_app.cli", imported="ray_jobs.sweep")


def test_core_imports_without_ray_at_run_time():
    code = (
        "import sys, importlib, pkgutil, mmse_model\n"
        "names = [m.name for m in pkgutil.walk_packages(mmse_model.__path__, 'mmse_model.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(n for n in sys.modules if n == 'ray' or "
        "n.startswith(('ray.', 'ray_jobs', 'mmse_app')))\n"
        "print(len(names))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 20
