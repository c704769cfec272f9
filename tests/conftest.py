"""Shared fixtures: a real PostgreSQL server (tests/postgres_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from postgres_server import postgres_server, why_unavailable


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    reason = why_unavailable()
    if reason is not None:
        if os.environ.get("BOOLNAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (BOOLNAS_REQUIRE_POSTGRES=1) but unavailable: {reason}")
        pytest.skip(reason)
    with postgres_server() as url:
        yield url
