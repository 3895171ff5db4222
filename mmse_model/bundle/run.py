"""The two commands on a bundle: `mmse bundle` (write one from a finished sweep) and
`mmse predict --bundle` (apply one). Each returns the line it prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mmse_model.bundle.apply import features_for, load_bundle, predict, write_predictions
from mmse_model.bundle.layout import BUNDLE_DIR
from mmse_model.bundle.write import describe, write_bundle
from mmse_model.core import outputs, storage
from mmse_model.core.errors import InputError
from mmse_model.core.inputs import MAX_FILE_MB
from mmse_model.data.manifest import data_fingerprint
from mmse_model.sweeps.summary_schema import SUMMARY_NAME, Provenance, read_summary
from mmse_model.training.checkpoint import CheckpointPayload

if TYPE_CHECKING:
    from mmse_model.features.gaze_formats import Layout


def bundle_experiment(
    experiment: str,
    out: str | None,
    data_root: str | None,
    load: Callable[[str], CheckpointPayload],
) -> str:
    where = storage.join(experiment, SUMMARY_NAME)
    try:
        summary = read_summary(storage.redact(where), storage.read_text(where))
    except FileNotFoundError:
        raise InputError(
            f"{storage.redact(where)}: no such file (a finished sweep's summary)"
        ) from None
    if summary.failed_trials:
        raise InputError(
            f"{storage.redact(where)}: the sweep did not finish ({len(summary.failed_trials)} "
            "trials failed); finish it with --resume before bundling it"
        )
    provenance = summary.provenance or Provenance()
    data_root = data_root or provenance.data_root
    if not data_root:
        raise InputError(
            f"{storage.redact(experiment)}: summary.json records no data root; give --data"
        )
    if not Path(data_root).is_dir():
        raise InputError(f"{data_root}: no such data root (the sweep's); give --data")
    # The residuals, feature ranges and build parameters come from these files: the sweep's own.
    recorded = provenance.data_fingerprint
    if recorded and data_fingerprint(data_root) != recorded:
        raise InputError(
            f"{data_root}: not the data the sweep trained on (its fingerprint differs from the one "
            f"{storage.redact(where)} records); give --data the sweep's data root"
        )
    target = out or storage.join(experiment, BUNDLE_DIR)
    manifest = write_bundle(summary, data_root, load, target, source=storage.redact(experiment))
    return describe(manifest, storage.redact(target))


def predict_with_bundle(
    bundle_location: str,
    out: str,
    *,
    features: str | None = None,
    recordings: str | None = None,
    signature: str | None = None,
    task: str | None = None,
    overwrite: bool = False,
    max_file_mb: float = MAX_FILE_MB,
    layout: Layout | None = None,
) -> str:
    """Predict every subject the features (or recordings) hold; nothing is written unless all
    of it is accepted. `max_file_mb` caps every features file or recording read; `layout`
    (`--format`) is how the recordings keep their gaze, by default the bundle's. `out` must
    not be (or lie inside) the bundle, the features or the recordings, nor anything but a
    regular file; an existing one is replaced only with `overwrite` (core/outputs.py)."""
    storage.check_location(bundle_location, "--bundle")
    outputs.check_output_file(
        out,
        [("--bundle", bundle_location), ("--features", features), ("--recordings", recordings)],
        overwrite=overwrite,
    )
    if not storage.is_dir(bundle_location):
        raise InputError(f"{storage.redact(bundle_location)}: no such folder")
    with storage.local_copy(
        bundle_location, "reading the bundle"
    ) as folder:  # a URI: a temporary copy
        bundle = load_bundle(folder)
        if recordings is not None:
            from mmse_model.bundle.recordings import features_from_recordings

            inputs = features_from_recordings(bundle, Path(recordings), max_file_mb, layout)
        else:
            inputs = features_for(bundle, features, signature, task, max_file_mb)
        predictions = predict(bundle, inputs)
    write_predictions(predictions, out)
    flagged = sum(1 for f in predictions.out_of_range if f)
    # A subtotal only for subjects with all of the bundle's tasks: say for how many.
    with_subtotal = sum(1 for v in predictions.values.get("subtotal", ()) if v is not None)
    return (
        f"{'SYNTHETIC-data models: ' if bundle.manifest.synthetic else ''}wrote predictions for "
        f"{len(predictions.subject_ids)} subjects ({', '.join(inputs)}"
        f"{f'; subtotal for {with_subtotal}' if with_subtotal else ''}) with "
        f"{bundle.manifest.interval_level:.0%} intervals to {out}"
        + (
            f"; {flagged} with features far outside the training range (out_of_range)"
            if flagged
            else ""
        )
        + (
            ""
            if bundle.manifest.digest is not None
            else "; an older bundle without a manifest digest: its weights were checked by "
            "sha256, the manifest itself not (write it again with `mmse bundle` to seal it)"
        )
    )
