"""``python -m patterns``: see :mod:`patterns.cli`."""

import sys

from patterns.cli import main

sys.exit(main())
