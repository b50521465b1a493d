"""``python -m train``: train, export and verify the spiking CNN (see :mod:`train.trainer`)."""

import sys

from .trainer import main

sys.exit(main())
