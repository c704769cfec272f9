"""Building frozen config records (dataclasses) from user mappings, refusing unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def record_from_mapping(cls: type[T], data: Any, label: str, error: type[ValueError] = ValueError) -> T:
    """``cls(**data)`` after checking that ``data`` is a mapping of known field names.

    The record's own ``__post_init__`` validates the values; this refuses what it cannot see:
    a non-mapping and unknown keys, naming them and the allowed ones.
    """
    if not isinstance(data, Mapping):
        raise error(f"{label} must be a mapping of field -> value, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise error(f"unknown {label} field(s) {unknown}; allowed fields: {sorted(known)}")
    return cls(**dict(data))
