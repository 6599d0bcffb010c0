"""One Markdown table writer for every table the platform prints or writes: evaluation reports
(:mod:`msm.eval.report`), the demo's comparison, the experiments' score tables (:mod:`msm.experiments.common`) and
the sweep report (:mod:`msm.tune.report`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; columns whose index is in ``right`` are right-aligned (numbers)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """``0.246 ± 0.006`` over several values, ``0.246`` for one, ``–`` for none."""
    if not values:
        return "–"
    text = f"{statistics.mean(values):.{digits}f}"
    return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")
