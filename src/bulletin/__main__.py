"""`python -m bulletin` runs the command line."""

from .cli import run

run()
