"""``python -m train.search``: the design-space search (see :mod:`train.search`)."""

import sys

from golden.cli import run_main

from .cli import main

if __name__ == "__main__":
    sys.exit(run_main(main))
