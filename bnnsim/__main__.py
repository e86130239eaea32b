"""``python -m bnnsim``: see bnnsim.cli."""

import sys

from bnnsim.cli import main

sys.exit(main())
