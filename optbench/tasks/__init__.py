"""Task plugins: the contract in :mod:`optbench.tasks.base` and the tasks that implement it."""
