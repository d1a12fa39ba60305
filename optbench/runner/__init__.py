"""One run: run dir, seeding, the training loop, checkpoint/resume, metric sinks, memory."""
