"""Atomic file writes: a temp file in the target's folder, then a rename, so a reader never
sees a half-written file. The file gets the permissions of an ordinary new file (0666 less the
umask): results, exports and checkpoints are meant to be read by others, and mkstemp's 0600
would hide them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _file_mode() -> int:
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` through ``write(tmp)``, which fills the temp file ``tmp``; on any error
    the temp file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))
