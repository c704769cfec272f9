"""Reading and writing architecture files: a preset name or a YAML path -> Genotype.

An arch YAML is either a bare genotype mapping, or a mapping with a ``genotype`` key (the
format ``boolnas-export`` writes, which adds measured metrics and a training command).
YAML is read with the safe loader only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from boolnas.space.files import write_text_atomic
from boolnas.space.genotype import Genotype
from boolnas.space.presets import PRESETS, get_preset
from boolnas.space.records import read_yaml


class ArchError(ValueError):
    """An architecture reference that cannot be resolved; the message says what to fix."""


def load_arch(ref: str) -> tuple[str, Genotype]:
    """Resolve ``ref`` (a preset name or a path to an arch YAML) to ``(name, genotype)``."""
    if ref in PRESETS:
        return ref, get_preset(ref)
    path = Path(ref)
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in ref
    if not looks_like_path:
        raise ArchError(f"unknown preset {ref!r}; use one of {list(PRESETS)} or a path to an arch YAML file")
    data = read_yaml(path, "arch file", ArchError)
    if data is None:
        raise ArchError(f"arch file {str(path)!r} is empty; write the genotype fields in it "
                        "(boolnas-export writes such files)")
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    if not isinstance(data, dict):
        raise ArchError(
            f"arch file {str(path)!r} must hold a mapping of genotype fields "
            f"(or a mapping with a 'genotype' key), got {type(data).__name__}"
        )
    try:
        genotype = Genotype.from_dict(data)
    except ValueError as exc:
        raise ArchError(f"arch file {str(path)!r}: {exc}") from None
    return path.stem, genotype


def dump_arch(path: str | Path, genotype: Genotype, extra: dict[str, Any] | None = None) -> Path:
    """Write ``genotype`` (plus ``extra`` top-level keys) to ``path`` atomically."""
    path = Path(path)
    payload: dict[str, Any] = {"genotype": genotype.to_dict(), **(extra or {})}
    return write_text_atomic(path, yaml.safe_dump(payload, sort_keys=False))
