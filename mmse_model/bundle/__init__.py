"""What leaves a sweep: applying trained models to new subjects."""
