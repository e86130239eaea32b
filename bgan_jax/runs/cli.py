"""What train.py and analyze.py share: one-line failures and option checks."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, Optional

from bgan_jax.runs.kind import Kind


def fail(prog: str, message: str, code: int) -> int:
    """Print ``prog: message`` on stderr (no traceback) and return the exit code."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def inapplicable(kind: Kind, args: argparse.Namespace, options: Iterable[str]) -> Optional[str]:
    """The message for the first given option that ``kind`` does not take, or None."""
    for option in options:
        if getattr(args, option) and option not in kind.accepts:
            return f"--{option} does not apply to {kind.name} runs ({kind.description})"
    return None
