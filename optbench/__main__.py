"""`python -m optbench` is `optbench`."""

from optbench.cli import app

app(prog_name="optbench")
