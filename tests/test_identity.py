"""Dataset identity (mmse_model/core/identity.py): written as plain strings, read back, compared."""

import numpy as np
import pytest

from mmse_model.core.errors import DataError
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity

BUILD = BuildParams(mode="trajectory", rate_hz=90.0, theiler_window=23)


def test_identity_round_trips_through_an_npz_without_pickle(tmp_path):
    ident = DatasetIdentity("m2_tau1_eps0.055_lmin2", "Q3", BUILD, BUILDER_VERSION)
    np.savez(tmp_path / "Q3.npz", X=np.zeros((2, 10)), y=np.zeros(2), **ident.arrays())
    with np.load(tmp_path / "Q3.npz", allow_pickle=False) as archive:
        back = DatasetIdentity.from_arrays(tmp_path / "Q3.npz", dict(archive))
    assert back == ident


def test_a_file_without_identity_has_none_and_a_partial_one_is_refused(tmp_path):
    assert DatasetIdentity.from_arrays("old.npz", {"X": np.zeros((1, 10))}) is None
    with pytest.raises(
        DataError, match=r"^part\.npz: records signature, task but not build_params"
    ):
        DatasetIdentity.from_arrays(
            "part.npz", {"signature": np.array("s"), "task": np.array("Q1")}
        )


def test_mismatch_names_the_first_difference_with_both_values():
    ident = DatasetIdentity("m2_tau1_eps0.055_lmin2", "Q3", BUILD, BUILDER_VERSION)
    assert ident.mismatch(ident) is None
    other_sig = DatasetIdentity("m3_tau3_eps0.08_lmin3", "Q3", BUILD, BUILDER_VERSION)
    assert (
        ident.mismatch(other_sig)
        == "signature: expected m3_tau3_eps0.08_lmin3, found m2_tau1_eps0.055_lmin2"
    )
    assert (
        ident.mismatch(DatasetIdentity("m2_tau1_eps0.055_lmin2", "Q1"))
        == "task: expected Q1, found Q3"
    )
    fixation = BuildParams(mode="fixation", rate_hz=90.0, theiler_window=1)
    assert "build parameters: expected mode=fixation" in ident.mismatch(
        DatasetIdentity("m2_tau1_eps0.055_lmin2", "Q3", fixation, BUILDER_VERSION)
    )


def test_fingerprints_follow_content_not_order(tmp_path):
    from mmse_model.core.hashing import combined_fingerprint, sha256_bytes, sha256_file

    (tmp_path / "a").write_bytes(b"abc")
    assert (
        sha256_file(tmp_path / "a")
        == sha256_bytes(b"abc")
        == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    )
    pairs = [("Q1.npz", "11"), ("Q2.npz", "22")]
    assert combined_fingerprint(pairs) == combined_fingerprint(reversed(pairs))
    assert combined_fingerprint(pairs) != combined_fingerprint([("Q1.npz", "11"), ("Q2.npz", "23")])
