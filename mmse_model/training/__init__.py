"""Learning: the batched model, its optimiser, the loop, its callbacks and checkpoints."""
