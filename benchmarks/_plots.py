"""What the benchmarks' outputs share: matplotlib headless, atomic PNG files, portable paths.

A benchmark may be killed mid-write (they run for hours in the background); a figure is written
to a temporary file and renamed, so a committed PNG is never half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display on the benchmark machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, dpi: int = 140) -> None:
    """Write ``fig`` to ``path`` atomically and close it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, path)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)


REPO = Path(__file__).resolve().parents[1]


def shown_path(path: Path) -> str:
    """A path as a summary records it: relative to the repository when inside it, so a committed
    summary does not depend on where the checkout lies."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
