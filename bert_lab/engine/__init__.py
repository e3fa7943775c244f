"""Fine-tuning, the one part that imports torch: data (load, split, tokenize, batch), the model, the optimizer and its
penalties, the schedules, the training loop (`train`), evaluation and prediction, and what the loop reports (`reports`).
It never touches the run store: it reports through hooks."""
