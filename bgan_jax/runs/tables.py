"""The one writer of result tables: markdown, mean +- std over seeds (RESULTS.md)."""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np


def mean_std(values: Iterable[Optional[float]], digits: int = 3) -> str:
    """'mean +- std' of the finite values (population std), '-' when there are none."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "-"
    return f"{np.mean(vals):.{digits}f} +- {np.std(vals):.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """Lines of a markdown table."""
    return (["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def mean_std_table(rows: Sequence[Dict], by: str,
                   columns: Dict[str, Callable[[Dict], Optional[float]]],
                   label: Optional[str] = None, digits: int = 3) -> List[str]:
    """One line per distinct ``row[by]`` (first-seen order), one ``mean +- std`` cell per
    column over the rows of that group (``columns[name](row)``; None = not measured)."""
    groups = list(dict.fromkeys(r[by] for r in rows))
    body = [[g] + [mean_std((get(r) for r in rows if r[by] == g), digits)
                   for get in columns.values()] for g in groups]
    return markdown_table([label or by, *columns], body)


def seeds_of(rows: Sequence[Dict]) -> int:
    return len({r["seed"] for r in rows if "seed" in r})
