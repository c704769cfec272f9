"""Typed, bounded fields of user input: one check, one message, for every config record.

Every configuration record (space, task, genotype, budget, data, energy profile, sampler, storage,
scheduler, proposer, the search's own keys) validates its values here: :func:`field_value` checks
a value's kind (``bool`` is neither an integer nor a number, so ``epochs: true`` is refused) and
its bounds, and raises one line that names the field and what it expects
(:data:`MUST`: ``budget.epochs must be a positive integer, got 0``; :data:`EXPECTED`:
``task field 'input_size': expected a positive integer, got 0``). :func:`refuse_unknown` refuses
keys a record does not have, naming the allowed ones, and :func:`one_of` a name that is not
one of a list (``sampler.name='foo' is unknown; use one of [...]``). :func:`check_fields` checks a
record's fields against a declaration (:class:`Check` per field).

The wording of what is expected follows from the kind and the bounds (:func:`expectation`);
where a message says more, ``expected=`` gives it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

INTEGER = "integer"
NUMBER = "number"
BOOL = "bool"
STRING = "string"
PATH = "path"  # a non-empty string
MUST = "{label} must be {expected}, got {value!r}"
EXPECTED = "{label}: expected {expected}, got {value!r}"


def is_integer(value: Any) -> bool:
    """An int that is not a bool (YAML's ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_KINDS = {INTEGER: is_integer, NUMBER: is_number, BOOL: lambda v: isinstance(v, bool),
          STRING: lambda v: isinstance(v, str), PATH: lambda v: isinstance(v, str) and v != ""}
_WORDS = {BOOL: "true or false", STRING: "a string", PATH: "a path"}  # what a kind without bounds is


def within(value: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> bool:
    """``low <= value <= high`` (``<`` where open; a missing bound is no bound). NaN is outside
    every bound."""
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or (value < high if high_open else value <= high)


def expectation(kind: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False) -> str:
    """What a field of ``kind`` within the bounds is, in words: "a positive integer", "an integer
    >= 2", "a non-negative number", "a number in [0, 1)", "true or false"."""
    if kind in _WORDS:
        return _WORDS[kind]
    if kind == INTEGER:
        least = None if low is None else low + 1 if low_open else low
        return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            least, f"an integer >= {least}")
    if high is None or (high == math.inf and high_open):
        if low == 0:
            return "a positive number" if low_open else "a non-negative number"
        return "a number"
    return f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def field_value(value: Any, label: str, kind: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, optional: bool = False,
                expected: str | None = None, template: str = MUST, error: type[ValueError] = ValueError) -> Any:
    """``value`` when it is of ``kind`` (:data:`INTEGER`, :data:`NUMBER`, :data:`BOOL`,
    :data:`STRING`, :data:`PATH`) within the bounds (see :func:`within`), or None when ``optional``; else
    ``error`` with ``template`` filled in with ``label``, ``expected`` (default: its
    :func:`expectation`) and ``value``."""
    if optional and value is None:
        return None
    if _KINDS[kind](value) and (kind not in (INTEGER, NUMBER) or within(
            value, low, high, low_open=low_open, high_open=high_open)):
        return value
    if expected is None:
        expected = expectation(kind, low, high, low_open=low_open, high_open=high_open)
    raise error(template.format(label=label, expected=expected, value=value))


def one_of(value: Any, label: str, choices: Sequence[Any], error: type[ValueError] = ValueError, *,
           problem: str = "is unknown") -> Any:
    """``value`` when it is one of ``choices``; else ``<label>=<value> is unknown; use one of [...]``
    (``problem`` in place of "is unknown")."""
    if value not in choices:
        raise error(f"{label}={value!r} {problem}; use one of {list(choices)}")
    return value


@dataclass(frozen=True)
class Check:
    """A field's kind and bounds (the arguments of :func:`field_value`), for :func:`check_fields`."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    expected: str | None = None


def check_fields(record: Any, label: str, error: type[ValueError] = ValueError,
                 **checks: Check | Sequence[Any]) -> None:
    """Check the fields of ``record`` in the order given: a :class:`Check` with :func:`field_value`,
    a sequence of names with :func:`one_of`; each named ``<label>.<field>``."""
    for name, check in checks.items():
        value, where = getattr(record, name), f"{label}.{name}"
        if isinstance(check, Check):
            field_value(value, where, check.kind, low=check.low, high=check.high, low_open=check.low_open,
                        high_open=check.high_open, optional=check.optional, expected=check.expected, error=error)
        else:
            one_of(value, where, check, error)


def refuse_unknown(data: Iterable[Any], known: Collection[str], label: str, error: type[ValueError] = ValueError,
                   *, noun: str = "field(s)", allowed: str = "allowed fields") -> None:
    """Refuse keys of ``data`` outside ``known``: ``unknown <label> <noun> [...]; <allowed>: [...]``."""
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise error(f"unknown {label} {noun} {unknown}; {allowed}: {sorted(known)}")


def options_of(cls: type, data: Any, label: str) -> dict[str, Any]:
    """``data`` as a dict of the dataclass ``cls``'s fields, refusing other keys
    (``unknown <label> option(s) [...]; allowed: [...]``): the options of a conf/ group."""
    data = dict(data)
    refuse_unknown(data, cls.__dataclass_fields__, label, noun="option(s)", allowed="allowed")  # type: ignore[attr-defined]
    return data
