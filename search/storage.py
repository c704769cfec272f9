"""Where a study lives: an embedded SQLite file, a journal file or a PostgreSQL server.

- **sqlite** (default): ``results/<study>/study.db``, opened in WAL mode with a 60 s busy
  timeout. Several workers on one machine share it: WAL lets readers (progress polling,
  reports) run while one writer commits, writers queue on the lock instead of failing with
  "database is locked", and Optuna numbers trials inside a transaction, so numbers stay unique.
  Heartbeats work on it (an RDB storage), so a killed worker's trial is retried. Not for network
  file systems (SQLite's locks are unreliable there): use the journal or PostgreSQL.
- **journal**: Optuna's append-only log with a lock file (``results/<study>/journal.log``);
  works on NFS, but has no heartbeats (a dead worker's trial is detected on its own host only).
- **memory**: Optuna's in-memory storage, nothing written (replays of the boolnas-bench table,
  experiments); one process, no resume.
- **postgres**: a server shared by workers on many machines, ``storage.url`` or the environment
  variable ``BOOLNAS_STORAGE_URL`` (so passwords stay out of configs, logs and reports).

An unreachable server fails within :data:`CONNECT_TIMEOUT_S` with a message, and every URL
shown to a user or written to a file has its password masked (:func:`masked`). A command that
names no storage opens a study folder holding only ``journal.log`` as a journal study
(:func:`detect_local_kind`, used by search/cli/studies.py).
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:  # annotations only: search/config.py defines StorageConfig and imports this module
    from boolnas.search.config import StorageConfig

ENV_URL = "BOOLNAS_STORAGE_URL"
CONNECT_TIMEOUT_S = 10  # per connection attempt; opening a study stays well inside 30 s
SQLITE_BUSY_TIMEOUT_S = 60
OPEN_ATTEMPTS = 5
TRANSIENT = ("already exists", "locked", "unique constraint", "duplicate key", "busy")
_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)", re.IGNORECASE)


LOCAL_FILES = {"sqlite": "study.db", "journal": "journal.log"}  # in results/<study>/ unless storage.url is set


class StorageError(ValueError):
    """The storage cannot be opened (a user error: wrong URL, server down, bad permissions)."""


def masked(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", text)


def resolve_url(storage: StorageConfig, study_dir: Path) -> str:
    """The storage's location: the configured URL, ``$BOOLNAS_STORAGE_URL`` for postgres, or a
    file in the study's results folder."""
    if storage.kind == "sqlite":
        return storage.url or f"sqlite:///{study_dir / LOCAL_FILES['sqlite']}"
    if storage.kind == "journal":
        return str(storage.url or study_dir / LOCAL_FILES["journal"])
    if storage.kind == "memory":
        return "memory (not persisted)"
    url = storage.url or os.environ.get(ENV_URL)
    if not url:
        raise StorageError(f"storage=postgres needs storage.url=postgresql+psycopg://user:password@host/database "
                           f"or the environment variable {ENV_URL}")
    if not url.startswith(("postgresql", "postgres")):
        raise StorageError(f"storage=postgres needs a postgresql:// URL, got {masked(url)!r}")
    # The driver boolnas ships (psycopg 3) for plain postgresql:// and the common postgres:// alias;
    # SQLAlchemy would otherwise look for psycopg2 or reject the alias.
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def display_url(storage: StorageConfig, study_dir: Path) -> str:
    """The storage location with its password masked (for logs, reports, exported files)."""
    return masked(resolve_url(storage, study_dir))


def is_local_file(storage: StorageConfig) -> bool:
    """True when the storage is a file in the study's results folder (created on first use)."""
    return storage.kind in ("sqlite", "journal") and not storage.url


def detect_local_kind(study_dir: Path, configured: str) -> str | None:
    """The local storage kind to open ``study_dir`` with instead of ``configured`` (the default the
    user did not choose): the other kind when the folder holds only the other kind's file, else
    None. A folder holding both files is ambiguous: a :class:`StorageError` asks for ``storage=``."""
    if configured not in LOCAL_FILES:
        return None
    present = [kind for kind, name in LOCAL_FILES.items() if (Path(study_dir) / name).is_file()]
    if len(present) > 1:
        files = " and ".join(LOCAL_FILES[k] for k in present)
        raise StorageError(f"{study_dir} holds two studies ({files}): pass storage="
                           f"{' or storage='.join(present)} to say which one to open")
    if present and present[0] != configured:
        return present[0]
    return None


def make_storage(storage: StorageConfig, study_dir: Path) -> optuna.storages.BaseStorage:
    """The configured storage object, reachable and with heartbeats where the backend has them."""
    if storage.kind == "memory":
        return optuna.storages.InMemoryStorage()
    url = resolve_url(storage, study_dir)
    if is_local_file(storage):
        study_dir.mkdir(parents=True, exist_ok=True)
    if storage.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            return JournalStorage(JournalFileBackend(url))
        except OSError as exc:
            raise StorageError(f"cannot open the journal file {url}: {exc.strerror or exc}; choose a writable "
                               f"results_dir= (or another storage.url=)") from None
    return _rdb_storage(url, storage)


def _rdb_storage(url: str, storage: StorageConfig) -> optuna.storages.RDBStorage:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    engine_kwargs: dict[str, Any]
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    else:
        # connect_timeout bounds each attempt; pool_pre_ping drops connections a restarted server closed
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    heartbeat = {}
    if storage.heartbeat_interval:
        # stale trials are failed and retried by search.liveness.fail_stale, which records why
        heartbeat = {"heartbeat_interval": storage.heartbeat_interval, "grace_period": storage.grace_period}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
            if url.startswith("sqlite"):
                _enable_wal(rdb)
            return rdb
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise StorageError(f"storage URL {masked(url)!r} is not usable: {_first_line(exc)} (for PostgreSQL "
                               f"use postgresql+psycopg://user:password@host:port/database)") from None
        except SQLAlchemyError as exc:
            # Processes that open a new database at the same moment race to create its tables
            # (a worker, a report, a test reading progress): the loser sees "already exists" or
            # a lock; the tables are there a moment later. Anything else is the user's to fix.
            if attempt + 1 < OPEN_ATTEMPTS and any(t in str(exc).lower() for t in TRANSIENT):
                time.sleep(0.2 * (attempt + 1))
                continue
            if url.startswith("sqlite"):
                raise StorageError(f"cannot open the study database {url.removeprefix('sqlite:///')}: "
                                   f"{_first_line(exc)} (is its folder writable? choose a writable results_dir=, "
                                   f"or another storage.url=)") from None
            raise StorageError(f"cannot reach the storage {masked(url)}: {_first_line(exc)} "
                               f"(is the server running and the URL right?)") from None
    raise AssertionError("unreachable")


def _enable_wal(rdb: optuna.storages.RDBStorage) -> None:
    """WAL is a property of the database file: set once, every later connection uses it."""
    from sqlalchemy import text

    with rdb.engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        if str(mode).lower() != "wal":
            conn.execute(text("PRAGMA journal_mode=WAL"))
            conn.commit()


def _first_line(exc: BaseException) -> str:
    return masked(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
