"""A sweep's config and results: one row per (signature, task, sample), winners, summary."""
