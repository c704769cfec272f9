"""Running the console scripts of another version of boolnas, beside this one.

A benchmark that compares two versions (output_parity.py: same bytes; bench_concurrency.py
``--before-rev``: the old code's wall time) checks the other version out as a git worktree and
starts its commands with :func:`command`, which runs that tree's code whatever the interpreter has
installed: the entry point comes from the tree's own pyproject.toml, editable finders are dropped,
and the tree is mapped as the ``boolnas`` namespace (as an installation maps it) and put on
``sys.path`` (versions from before the namespace imported ``space``, ``search``, ... directly).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]

LAUNCHER = """
import importlib, sys, types
tree, target, name = sys.argv[1], sys.argv[2], sys.argv[3]
sys.argv = [name, *sys.argv[4:]]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in (getattr(h, "__module__", "") or "")]
sys.path_importer_cache.clear()
namespace = types.ModuleType("boolnas")
namespace.__path__ = [tree]
sys.modules["boolnas"] = namespace
if not target.startswith("boolnas."):
    sys.path.insert(0, tree)
module, function = target.split(":")
sys.exit(getattr(importlib.import_module(module), function)())
"""


def entry_points(tree: Path) -> dict[str, str]:
    """The console scripts of ``tree``: name -> ``module:function``."""
    return tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]


def command(tree: Path, script: str, args: Sequence[str]) -> list[str]:
    """The argv that runs console script ``script`` (``boolnas-search``, ...) of ``tree`` with ``args``."""
    return [sys.executable, "-c", LAUNCHER, str(tree), entry_points(tree)[script], script, *args]


def add_worktree(rev: str, where: Path) -> Path:
    """A detached worktree of ``rev`` at ``where`` (kept if it is already there)."""
    if not where.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                       capture_output=True)
    return where


def remove_worktree(where: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)


@contextmanager
def worktree(rev: str, where: Path) -> Iterator[Path]:
    """A worktree of ``rev`` at ``where`` for the duration of the block."""
    try:
        yield add_worktree(rev, where)
    finally:
        remove_worktree(where)
