"""From a trained network to numbers: metrics in points, bootstrap intervals, baselines."""
