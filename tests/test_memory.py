"""evaluators/memory.py: free memory is read, and only a need above it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from boolnas.evaluators import memory


def test_available_bytes_reads_linux_memavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:    2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", info)
    assert memory.available_bytes() == 2048 * 1024


def test_unreadable_meminfo_refuses_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "absent")
    assert memory.available_bytes() is None
    memory.require(10**18, "anything", "no fix needed")  # cannot tell: not refused


def test_require_refuses_only_above_the_free_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "meminfo"
    info.write_text(f"MemAvailable: {4 * 2**20} kB\n")  # 4 GiB
    monkeypatch.setattr(memory, "MEMINFO", info)
    memory.require(4 * 2**30, "exactly the free memory", "-")
    refused = r"big run needs at least 5\.0 GiB .* has 4\.0 GiB available; shrink"
    with pytest.raises(memory.NotEnoughMemory, match=refused):
        memory.require(5 * 2**30, "big run", "shrink")
    assert issubclass(memory.NotEnoughMemory, ValueError)  # CLIs report it with exit 2


def test_images_bytes_is_float32_images() -> None:
    assert memory.images_bytes(10, 3, 32) == 10 * 3 * 32 * 32 * 4
