"""Checkpoints written atomically and read back safely (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safe(path: Path) -> Any:
    """Load tensors, numbers, strings and containers only: a checkpoint can't run code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"cannot load checkpoint {path}: {exc}; delete it to start over") from None


class Checkpointer:
    """The resumable state of one training run, in ``<run_dir>/checkpoint.pt``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "checkpoint.pt"

    def save(self, state: dict[str, Any]) -> None:
        save_atomic(state, self.path)

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        state = load_safe(self.path)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{self.path} is not a boolnas training checkpoint; delete it to start over")
        return state
