"""`python -m removeany` runs the same command line as `removeany`."""

from removeany.cli import app

app(prog_name="removeany")
