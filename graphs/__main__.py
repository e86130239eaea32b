"""``python -m graphs``: see graphs.cli."""

import sys

from graphs.cli import main

sys.exit(main())
