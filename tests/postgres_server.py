"""A private PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a fresh cluster in
a temporary folder, listening on a free loopback port, password authentication.

``BOOLNAS_TEST_POSTGRES_URL`` points the tests at an existing server instead. Without either,
the tests that need PostgreSQL are skipped, unless ``BOOLNAS_REQUIRE_POSTGRES=1`` (set by
.ci/run), which turns the skip into a failure so CI cannot go green without them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER, PASSWORD, DATABASE = "boolnas", "pg-Secret-7f3a", "boolnas"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user the package creates."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def why_unavailable() -> str | None:
    if os.environ.get("BOOLNAS_TEST_POSTGRES_URL"):
        return None
    if _binaries() is None:
        return "PostgreSQL binaries not found (apt-get install postgresql, or set BOOLNAS_TEST_POSTGRES_URL)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a ``postgresql+psycopg://`` URL of a running server with an empty database."""
    external = os.environ.get("BOOLNAS_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    bindir = _binaries()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="boolnas-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                              "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c max_connections=100 -c fsync=off"
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
                              "-w", "-t", "60", "start"]), check=True, capture_output=True, timeout=120)
    try:
        subprocess.run(_as_owner([str(bindir / "createdb"), "-h", str(sock), "-p", str(port), "-U", USER, DATABASE]),
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
