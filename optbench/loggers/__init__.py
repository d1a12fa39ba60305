"""Where metrics go: the console, metrics.jsonl, and external loggers such as W&B (each a
:class:`optbench.contract.Sink`)."""
