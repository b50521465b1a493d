"""``python -m train``: train, export and verify the spiking CNN (see :mod:`train.trainer`)."""

import sys

from golden.cli import run_main

from .trainer import main

sys.exit(run_main(main))
