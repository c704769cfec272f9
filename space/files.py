"""Atomic file writes: a temp file in the target's folder, then a rename, so a reader never
sees a half-written file. The file gets the permissions of an ordinary new file (0666 less the
umask): results, exports and checkpoints are meant to be read by others, and mkstemp's 0600
would hide them.

A write that fails (no space left, read-only or unwritable folder, a file where a folder
should be) leaves the old file as it was and no temp file behind, and raises ``OSError`` of the
usual subclass (``PermissionError``, ``NotADirectoryError``, ...) whose ``filename`` is the
file the caller asked for, never the temp file's name, so a message can name the real path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def _file_mode() -> int:
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


def _raise_naming(exc: OSError, path: Path) -> NoReturn:
    """Raise the same error (errno, so the same OSError subclass, and message) about ``path``."""
    if exc.errno is None:  # not a system call's error: nothing to rename
        raise exc
    raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` through ``write(tmp)``, which fills the temp file ``tmp``; on any error
    the temp file is removed and ``path`` is untouched. The data reaches the disk (fsync)
    before the rename, so a crash cannot leave an empty file in place of the old one."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        _raise_naming(exc, path)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _raise_naming(exc, path)
        raise
    return path


def _fsync(file: Path) -> None:
    """Flush ``file``'s data to the disk; a deferred write error (a full disk) surfaces here."""
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))
