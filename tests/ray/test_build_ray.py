"""Ray tasks and the in-process path write the same bytes.

Runs on the session's shared two-CPU head (`ray_session` in conftest.py): one Ray instance
for every Ray-level test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmse_app.cli import main
from mmse_model.synth import cohort as synth
from tests.test_build import build_argv

SIGS = ["m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.07_lmin3"]


@pytest.mark.ray
def test_ray_and_in_process_outputs_are_identical(ray_session, tmp_path: Path) -> None:
    synth.synthesize(tmp_path / "c", n_subjects=5, seed=9, duration_s=(3.0, 5.0))
    (tmp_path / "c" / "recordings" / "synth0002" / "Q4.csv").write_text("t,x,y\n")
    cohort = tmp_path / "c"
    assert main(build_argv(cohort, tmp_path / "ray", signatures=SIGS, no_ray=False)) == 0
    assert main(build_argv(cohort, tmp_path / "local", signatures=SIGS)) == 0

    def files(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    ray_files, local_files = files(tmp_path / "ray"), files(tmp_path / "local")
    assert len(ray_files) == 12 and ray_files == local_files
    assert b"synth0002,Q4,no samples" in ray_files[Path("build_report.csv")]
