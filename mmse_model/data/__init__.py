"""The dataset contract: loading `<signature>/<Q>.npz`, the subject split, the fold tensors."""
