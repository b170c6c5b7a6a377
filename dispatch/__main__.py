"""``python -m dispatch``: the same command line as the ``dispatch`` console script."""
from dispatch.cli import run

run()
