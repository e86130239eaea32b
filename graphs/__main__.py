"""``python -m graphs``: see graphs.cli."""

import sys

from graphs.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # output piped into e.g. `head`
    sys.stderr.close()
    sys.exit(0)
