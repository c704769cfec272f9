"""Checkpoints written atomically and read back safely (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from boolnas.space.files import write_atomic

log = logging.getLogger(__name__)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: never a half-written file."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_safe(path: Path, fix: str = "delete it to start over") -> Any:
    """Load tensors, numbers, strings and containers only: a checkpoint can't run code.

    A file that is not a torch checkpoint, or one that holds other Python objects (a pickle
    with code), raises ``ValueError`` with one line naming the file, the problem and ``fix``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False, which boolnas never does: name the refused object
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise ValueError(f"cannot load checkpoint {path}: it holds the Python object {found.group(1)}, refused "
                             f"because loading it could run code; {fix}") from None
        reason = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        detail = reason.group(1).strip() if reason else _first_line(exc)
        raise ValueError(f"cannot load checkpoint {path}: not a torch checkpoint ({detail}); {fix}") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"cannot load checkpoint {path}: {_first_line(exc)}; {fix}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
