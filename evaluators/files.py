"""Atomic file writes (defined in space/files.py, the lowest layer, which space/ itself uses)."""

from space.files import write_atomic, write_text_atomic

__all__ = ["write_atomic", "write_text_atomic"]
