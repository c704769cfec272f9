"""Reading user input: YAML files (safe loader, one-line errors) and frozen config records
(dataclasses) built from user mappings, refusing unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from boolnas.space.fields import refuse_unknown

T = TypeVar("T")
R = TypeVar("R", bound="FromConf")
MAX_YAML_BYTES = 1 << 20  # a config file is a few KiB; a larger one is the wrong file


def record_from_mapping(cls: type[T], data: Any, label: str, error: type[ValueError] = ValueError) -> T:
    """``cls(**data)`` after checking that ``data`` is a mapping of known field names.

    The record's own ``__post_init__`` validates the values; this refuses what it cannot see:
    a non-mapping, unknown keys (naming them and the allowed ones) and missing fields of a record
    whose values come from conf/ only (fields without a default).
    """
    if not isinstance(data, Mapping):
        raise error(f"{label} must be a mapping of field -> value, got {type(data).__name__}")
    refuse_unknown(data, {f.name for f in fields(cls)}, label, error)  # type: ignore[arg-type]
    missing = [f.name for f in fields(cls)  # type: ignore[arg-type]
               if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise error(f"{label} lacks field(s) {missing}; every one needs a value")
    return cls(**dict(data))


def shipped_conf(group: str, option: str) -> dict[str, Any]:
    """The values of the shipped conf/<group>/<option>.yaml: where a record made in code starts,
    so conf/ stays the one source of defaults. conf/ ships as package data (``boolnas.conf``), found
    the same way in a checkout and in a wheel."""
    path = Path(str(files("boolnas.conf").joinpath(group, f"{option}.yaml")))
    return dict(read_yaml(path, f"{group} file"))


class FromConf:
    """A config record whose values live in conf/<CONF_GROUP>/*.yaml. A record made in code starts
    from one of those files (``Budget.from_conf("tiny", epochs=2)``), so conf/ stays the one source
    of its defaults; ``from_dict`` (the subclass's) validates the result."""

    CONF_GROUP: ClassVar[str]

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        raise NotImplementedError(f"{cls.__name__} must define from_dict, the check of its fields")

    @classmethod
    def from_conf(cls: type[R], conf: str, /, **overrides: Any) -> R:
        """The shipped conf/<CONF_GROUP>/<conf>.yaml with ``overrides``."""
        return cls.from_dict({**shipped_conf(cls.CONF_GROUP, conf), **overrides})


def read_yaml(path: str | Path, what: str, error: type[ValueError] = ValueError,
              max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Parse the YAML file ``path`` with the safe loader, raising ``error`` with one line that
    names the file and the problem: missing, a directory, too large, unreadable, not UTF-8
    text, not YAML, or a tag such as ``!!python/object`` (the safe loader builds plain values only).
    """
    path = Path(path)
    label = f"{what} {str(path)!r}"
    try:
        if path.is_dir():
            raise error(f"{label} is a directory; give the path of a YAML file")
        if not path.exists():
            raise error(f"{label} does not exist")
        if not path.is_file():  # a device, a pipe or a socket: reading it might never end
            raise error(f"{label} is not a regular file; give the path of a YAML file")
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{label} is {size:,} bytes, over the limit of {max_bytes:,} bytes: is it the right file?")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"{label} is not UTF-8 text (a binary file?); give a YAML file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{label} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise error(f"{label} is nested too deeply (lists or mappings inside each other thousands of times): "
                    "is it the right file?") from None


def _yaml_problem(exc: Exception) -> str:
    """One line: the problem and where it is (PyYAML's messages span several lines)."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    text = " ".join(str(problem).split()) + where
    if "python/" in text:
        text += "; Python tags are refused: the file must hold plain values only"
    return text
