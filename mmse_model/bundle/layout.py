"""Where things are in a model bundle (`<experiment>/bundle/`, or `mmse bundle --out DIR`).

    manifest.json          what the bundle is and what it may be applied to (manifest.py)
    model_card.md          the model card (card.py)
    <task>.safetensors     a task's winner: K fold-models, standardisers, out-of-fold residuals
    subtotal.safetensors   the subtotal's out-of-fold residuals (all tasks' winners present)

Weights are safetensors (tensors and a string header, nothing executable); every file's
sha256 is in the manifest and checked before it is read, the manifest's `digest` covers the
manifest itself (those hashes included), and each weights file records what it is (task,
signature, folds, feature names, score range), checked against the manifest. The manifest's
`contents` lists every file of the folder (itself included): a bundle is replaced only when
that list covers everything there (bundle/write.py, `foreign_content`).
"""

from __future__ import annotations

BUNDLE_DIR = "bundle"  # the folder a sweep writes into its experiment folder
MANIFEST = "manifest.json"
CARD = "model_card.md"
SUBTOTAL = "subtotal"

FORMAT = "mmse-bundle"
# The manifest's format version: a bundle written by newer code (a higher number) is refused,
# since what it holds may mean something this code does not know.
# 2: typed results (the sweep's summary contract); 3: `tool`, `kind` and `contents` (every
# file of the bundle: the marker that the folder is one this project wrote), the manifest's
# `digest` and the weights' full metadata (bundle integrity). 1 and 2 are upgraded on read.
FORMAT_VERSION = 3
KIND = "bundle"  # the manifest's `kind`


def weights_file(name: str) -> str:
    """`Q1.safetensors`, ..., `subtotal.safetensors`."""
    return f"{name}.safetensors"
