"""The SYNTHETIC cohort: simulated gaze recordings with MMSE labels, for demos and tests."""
