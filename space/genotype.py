"""The Genotype: a frozen, hashable record of every architecture choice.

The skeleton is a four-stage ResNet-18-like network (see docs/bnn-background.md, section 2). Every choice
is either *global* or *per stage*; per-stage choices are stored as tuples of length
``NUM_STAGES`` (``downsample`` has one entry per stage transition, stages 2..4). A global value
given to :meth:`Genotype.from_dict` is broadcast to every stage, and :meth:`Genotype.to_dict`
writes a per-stage tuple back as a scalar when all its entries are equal, so the YAML of a
uniform design stays short and the round trip is lossless.

Mixed designs (representation changes at a stage boundary) are well defined by the plan
(space/plan.py, ``_first_block_input``): every convolution takes whatever reaches it as it is
when it is binary, and binarizes it with the *consuming* stage's slice count when it is real.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from boolnas.space.fields import is_integer, is_number, within
from boolnas.space.records import record_from_mapping

NUM_STAGES = 4
BASE_WIDTHS = (64, 128, 256, 512)
DEFAULT_BLOCKS = (2, 2, 2, 2)

# Allowed values of every categorical choice. These are the universe of the space; a search
# space config (conf/space/*.yaml) narrows them.
SHORTCUTS = ("binary", "fp32")
PLACEMENTS = ("per_conv", "per_block")
SLICES = (1, 2, 4, 8)
DOWNSAMPLES = ("binary_maxpool", "fp32_avgpool", "strided")
STEMS = ("plain", "las", "rsign")
EXTRAS = ("none", "rprelu")
SIGN_GRADS = ("ste", "approx")
MAX_BLOCKS = 8
MAX_WIDTH_MULT = 8.0

CHOICES: dict[str, tuple[Any, ...]] = {
    "shortcut": SHORTCUTS,
    "placement": PLACEMENTS,
    "slices": SLICES,
    "downsample": DOWNSAMPLES,
    "feature_reuse": (False, True),
    "extras": EXTRAS,
    "stem": STEMS,
    "dilated_last": (False, True),
    "sign_grad": SIGN_GRADS,
}

PER_STAGE_FIELDS = ("shortcut", "placement", "slices", "feature_reuse", "extras", "blocks")
PER_TRANSITION_FIELDS = ("downsample",)
GLOBAL_FIELDS = ("stem", "dilated_last", "width_mult", "sign_grad")


def _length_of(name: str) -> int:
    return NUM_STAGES - 1 if name in PER_TRANSITION_FIELDS else NUM_STAGES


@dataclass(frozen=True)
class Genotype:
    """One point of the boolnas search space.

    Per-stage fields (tuples of 4): ``shortcut`` (``binary`` logic XNOR/OR joins or ``fp32``
    additive), ``placement`` of fp32 shortcuts (``per_conv`` Bi-Real, ``per_block`` ResNet;
    ignored by binary stages), ``slices`` k of multi-slice binary maps, ``feature_reuse``
    (BoolNet split / concat / shuffle), ``extras`` (``rprelu``: ReActNet's RSign thresholds
    before each sign plus RPReLU after each join), ``blocks`` per stage.
    Per-transition (tuple of 3, stages 2..4): ``downsample`` branch variant.
    Global: ``stem`` binarization, ``dilated_last`` stage, ``width_mult``, ``sign_grad``
    (gradient of the activation sign: clipped STE or Bi-Real's approx-sign).
    """

    shortcut: tuple[str, ...] = ("binary",) * NUM_STAGES
    placement: tuple[str, ...] = ("per_block",) * NUM_STAGES
    slices: tuple[int, ...] = (1,) * NUM_STAGES
    feature_reuse: tuple[bool, ...] = (False,) * NUM_STAGES
    extras: tuple[str, ...] = ("none",) * NUM_STAGES
    blocks: tuple[int, ...] = DEFAULT_BLOCKS
    downsample: tuple[str, ...] = ("binary_maxpool",) * (NUM_STAGES - 1)
    stem: str = "plain"
    dilated_last: bool = False
    width_mult: float = 1.0
    sign_grad: str = "ste"

    def __post_init__(self) -> None:
        # Validate every field, so a Genotype that exists is always a legal architecture,
        # whether it came from YAML, a sampler or Python code.
        for f in fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _validated(f.name, value))

    # ----------------------------------------------------------------- per-stage access
    def stage(self, index: int) -> dict[str, Any]:
        """The choices of stage ``index`` (0-based) as a flat dict."""
        out = {name: getattr(self, name)[index] for name in PER_STAGE_FIELDS}
        out["downsample"] = self.downsample[index - 1] if index > 0 else None
        return out

    @property
    def is_uniform(self) -> bool:
        """True when no choice differs between stages."""
        return all(len(set(getattr(self, n))) == 1 for n in (*PER_STAGE_FIELDS, *PER_TRANSITION_FIELDS))

    # ----------------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (YAML/JSON friendly); uniform per-stage tuples become scalars."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                out[f.name] = value[0] if len(set(value)) == 1 else list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genotype:
        """Build a Genotype from a dict, rejecting unknown keys, wrong types and bad values.

        Missing keys take their defaults. Raises ``ValueError`` naming the offending field.
        """
        return record_from_mapping(cls, data, "genotype")

    def canonical_dict(self) -> dict[str, Any]:
        """Every field per stage, with choices that have no effect normalized.

        ``placement`` has no meaning in a binary-shortcut stage (logic joins always wrap a
        block), so it is set to ``per_block`` there. Two genotypes with equal canonical dicts
        build the same network and the same plan.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["placement"] = [
            p if s == "fp32" else "per_block" for s, p in zip(self.shortcut, self.placement)
        ]
        return out

    def key(self) -> str:
        """A stable identifier (16 hex digits) of the architecture this genotype describes."""
        text = json.dumps(self.canonical_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- validation
def _validated(name: str, value: Any) -> Any:
    if name in PER_STAGE_FIELDS or name in PER_TRANSITION_FIELDS:
        n = _length_of(name)
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(
                    f"genotype field '{name}': expected one value or a list of {n} "
                    f"(one per {'stage transition' if n < NUM_STAGES else 'stage'}), "
                    f"got a list of {len(value)}"
                )
            items = list(value)
        else:
            items = [value] * n
        return tuple(_validated_scalar(name, v) for v in items)
    return _validated_scalar(name, value)


def _validated_scalar(name: str, value: Any) -> Any:
    if name == "blocks":
        if not is_integer(value):
            raise ValueError(f"genotype field 'blocks': expected an integer 1..{MAX_BLOCKS}, got {value!r}")
        if not within(value, 1, MAX_BLOCKS):
            raise ValueError(f"genotype field 'blocks': {value} is outside the allowed range 1..{MAX_BLOCKS}")
        return value
    if name == "width_mult":
        if not is_number(value):
            raise ValueError(
                f"genotype field 'width_mult': expected a number in (0, {MAX_WIDTH_MULT}], got {value!r}"
            )
        if not within(float(value), 0, MAX_WIDTH_MULT, low_open=True):
            raise ValueError(
                f"genotype field 'width_mult': {value} is outside the allowed range (0, {MAX_WIDTH_MULT}]"
            )
        return float(value)
    allowed = CHOICES[name]
    expected = type(allowed[0])
    # bool is a subclass of int: keep 1 / True apart so 'slices: true' is refused.
    if type(value) is not expected:
        raise ValueError(
            f"genotype field '{name}': expected {expected.__name__}, got {value!r} "
            f"({type(value).__name__}); allowed values: {list(allowed)}"
        )
    if value not in allowed:
        raise ValueError(f"genotype field '{name}': {value!r} is not allowed; allowed values: {list(allowed)}")
    return value
