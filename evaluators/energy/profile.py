"""HardwareProfile: the constants of one BNN accelerator, read from conf/energy/*.yaml.

A profile describes the machine, never a network: unit powers and parallelism, SRAM sizes,
read widths and per-access energies, DRAM access energy and which parts of a network run on
the accelerator. Every key is required; a missing, unknown, mistyped or out-of-range key is
refused with a ``ValueError`` that names it (dotted path, e.g. ``sram.fm_buffer_kib``).

YAML layout (see conf/energy/boolnet65nm.yaml for a commented example)::

    name: boolnet65nm
    compute:
      clock_ghz: 1.0
      static_fraction: 0.1           # share of a unit's power burned while it waits
      units:                         # every name of UNIT_NAMES, each with
        binary_conv: {parallelism: 4096, power_mw: 108.8}   # ... power_mw or pj_per_op
        ...
    precision: {real_weight_bits: 8, param_bits: 16}
    scope: {stem_conv: false, head: false}
    sram: {fm_buffer_kib: 192, weight_buffer_kib: 288, fm_lanes: 64, fm_access_pj: 60,
           fm_ref_width_bits: 64, fm_width_exponent: 1.0, weight_read_bits: 4096,
           weight_access_pj: 600, weight_reuse: 1}
    dram: {access_bits: 64, access_pj: 1500}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boolnas.space.fields import BOOL, EXPECTED, field_value, is_integer, is_number
from boolnas.space.records import read_yaml

# Unit types of the accelerator (docs/bnn-background.md, section 4). Order = index used by the model.
UNIT_NAMES: tuple[str, ...] = (
    "binary_conv",  # XNOR-popcount MAC array (binary weights x binary operand)
    "real_conv",  # fixed-point MAC array for real-valued convs (downsample, LAS, stem, FC)
    "logic_join",  # 1-bit aggregation: XNOR / OR shortcut joins
    "int_add",  # integer aggregation: additive shortcuts, average / max pooling, slice means
    "sign_folded",  # binarization against a folded-BN threshold (16-bit zero point)
    "sign_real",  # binarization of a stored 32-bit map on the fly (32-bit compare)
    "batchnorm",  # BN of a real-valued output (not foldable into a threshold)
    "rprelu",  # RPReLU / PReLU of a real-valued output
)
UNIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(UNIT_NAMES)}

_SECTIONS = ("name", "compute", "precision", "scope", "sram", "dram")
_OPTIONAL_TOP = ("description",)


class ProfileError(ValueError):
    """A hardware profile that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class UnitSpec:
    """One unit type: ``parallelism`` operations per cycle, ``cycle_pj`` energy per busy cycle."""

    parallelism: float
    cycle_pj: float


@dataclass(frozen=True)
class HardwareProfile:
    """Constants of one accelerator. Build with :meth:`from_dict` / :func:`load_profile`.

    Derived per-profile constants (unit energies, access energies per bit) are computed once
    here, so :func:`evaluators.energy.estimate` does only arithmetic per layer.
    """

    name: str
    clock_ghz: float
    static_fraction: float
    units: tuple[UnitSpec, ...]  # indexed like UNIT_NAMES
    real_weight_bits: int
    param_bits: int
    cost_stem_conv: bool
    cost_head: bool
    fm_buffer_kib: float
    weight_buffer_kib: float
    fm_lanes: int
    fm_access_pj: float
    fm_ref_width_bits: int
    fm_width_exponent: float
    weight_read_bits: int
    weight_access_pj: float
    weight_reuse: float
    dram_access_bits: int
    dram_access_pj: float
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ----------------------------------------------------------------- derived constants
    @property
    def fm_buffer_bits(self) -> float:
        return self.fm_buffer_kib * 8192.0

    @property
    def weight_buffer_bits(self) -> float:
        return self.weight_buffer_kib * 8192.0

    @property
    def out_parallelism(self) -> float:
        """Output channels the conv array serves per operand value read (array columns)."""
        return self.units[UNIT_INDEX["binary_conv"]].parallelism / self.fm_lanes

    def fm_width_bits(self, bits: int) -> int:
        """Read width of the feature-map SRAM for maps of ``bits`` per value: lanes x bits."""
        return self.fm_lanes * bits

    def fm_access_energy_pj(self, bits: int) -> float:
        """Energy of one feature-map SRAM access at the width used for ``bits``-bit maps.

        Per-access energy scales from the reference width as (width / ref) ** exponent,
        a power-law fit of CACTI-style access energies of banked SRAMs.
        """
        width = self.fm_width_bits(bits)
        return self.fm_access_pj * (width / self.fm_ref_width_bits) ** self.fm_width_exponent

    def fm_pj_per_bit(self, bits: int) -> float:
        return self.fm_access_energy_pj(bits) / self.fm_width_bits(bits)

    @property
    def weight_pj_per_bit(self) -> float:
        return self.weight_access_pj / self.weight_read_bits

    @property
    def dram_pj_per_bit(self) -> float:
        return self.dram_access_pj / self.dram_access_bits

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HardwareProfile:
        """Validate a mapping laid out as conf/energy/*.yaml; ProfileError names a bad key."""
        if not isinstance(data, Mapping):
            raise ProfileError(
                f"energy profile must be a mapping of keys, got {type(data).__name__}"
            )
        _check_keys("", data, _SECTIONS, optional=_OPTIONAL_TOP)
        name = data["name"]
        if not isinstance(name, str) or not name:
            raise ProfileError(
                f"energy profile key 'name': expected a non-empty string, got {name!r}"
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ProfileError(
                f"energy profile key 'description': expected a string, got {description!r}"
            )

        compute = _section(data, "compute", ("clock_ghz", "static_fraction", "units"))
        clock = _number("compute.clock_ghz", compute["clock_ghz"], positive=True)
        static = _number("compute.static_fraction", compute["static_fraction"])
        if static > 1:
            raise ProfileError(
                f"energy profile key 'compute.static_fraction': {static} is not in [0, 1]"
            )
        units_raw = _section(compute, "units", UNIT_NAMES, prefix="compute.")
        units = tuple(_unit(f"compute.units.{u}", units_raw[u], clock) for u in UNIT_NAMES)

        sections = {s: _section(data, s, tuple(k for sec, k, _, _ in _SCALARS if sec == s))
                    for s in ("precision", "scope", "sram", "dram")}
        return cls(
            name=name,
            description=description,
            clock_ghz=clock,
            static_fraction=static,
            units=units,
            **{attr: check(f"{s}.{k}", sections[s][k]) for s, k, attr, check in _SCALARS},
            source=_plain(data),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> HardwareProfile:
        """Read and validate a profile YAML file (safe loader; see :func:`space.records.read_yaml`)."""
        path = Path(path)
        data = read_yaml(path, "energy profile file", ProfileError)
        if data is None:
            raise ProfileError(f"energy profile file {str(path)!r} is empty; copy conf/energy/boolnet65nm.yaml "
                               "and change its numbers")
        try:
            return cls.from_dict(data)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The profile as given (YAML layout), for logs and result files."""
        return dict(self.source)


# Profiles shipped in conf/energy/ (the repository root is two levels above this package).
PROFILE_DIR = Path(__file__).resolve().parents[2] / "conf" / "energy"


def load_profile(ref: str | Path | Mapping[str, Any] = "boolnet65nm") -> HardwareProfile:
    """A profile from a name in conf/energy/, a YAML path, or an already-parsed mapping."""
    if isinstance(ref, Mapping):
        return HardwareProfile.from_dict(ref)
    text = str(ref)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or "/" in text:
        return HardwareProfile.from_yaml(path)
    candidate = PROFILE_DIR / f"{text}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")) if PROFILE_DIR.is_dir() else []
        raise ProfileError(
            f"unknown energy profile {text!r}; use one of {known} or a path to a YAML file"
        )
    return HardwareProfile.from_yaml(candidate)


# --------------------------------------------------------------------------- validation
def _plain(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def _check_keys(
    prefix: str, data: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    for key in required:
        if key not in data:
            raise ProfileError(
                f"energy profile key '{prefix}{key}' is missing; add it "
                "(see conf/energy/boolnet65nm.yaml)"
            )
    unknown = sorted(str(k) for k in data if k not in required and k not in optional)
    if unknown:
        names = ", ".join(f"'{prefix}{k}'" for k in unknown)
        raise ProfileError(
            f"unknown energy profile key(s) {names}; allowed here: {list(required + optional)}"
        )


def _section(
    data: Mapping[str, Any], key: str, required: tuple[str, ...], prefix: str = ""
) -> Mapping[str, Any]:
    value = data[key]
    if not isinstance(value, Mapping):
        raise ProfileError(f"energy profile key '{prefix}{key}': expected a mapping, got {value!r}")
    _check_keys(f"{prefix}{key}.", value, required)
    return value


def _number(key: str, value: Any, positive: bool = False) -> float:
    if not is_number(value):
        raise ProfileError(
            f"energy profile key '{key}': expected a number, got {value!r} ({type(value).__name__})"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ProfileError(
            f"energy profile key '{key}': {value} is invalid; it must be finite and {bound}"
        )
    return value


def _integer(key: str, value: Any) -> int:
    if not is_integer(value):
        raise ProfileError(
            f"energy profile key '{key}': expected a positive integer, got {value!r}"
        )
    if value < 1:
        raise ProfileError(f"energy profile key '{key}': {value} is invalid; it must be >= 1")
    return value


def _boolean(key: str, value: Any) -> bool:
    return field_value(value, f"energy profile key '{key}'", BOOL, template=EXPECTED, error=ProfileError)


def _positive(key: str, value: Any) -> float:
    return _number(key, value, positive=True)


# The scalar keys of a profile, in the order they are checked: (section, key, HardwareProfile field, check).
_SCALARS: tuple[tuple[str, str, str, Callable[[str, Any], Any]], ...] = (
    ("precision", "real_weight_bits", "real_weight_bits", _integer),
    ("precision", "param_bits", "param_bits", _integer),
    ("scope", "stem_conv", "cost_stem_conv", _boolean),
    ("scope", "head", "cost_head", _boolean),
    ("sram", "fm_buffer_kib", "fm_buffer_kib", _number),
    ("sram", "weight_buffer_kib", "weight_buffer_kib", _number),
    ("sram", "fm_lanes", "fm_lanes", _integer),
    ("sram", "fm_access_pj", "fm_access_pj", _number),
    ("sram", "fm_ref_width_bits", "fm_ref_width_bits", _integer),
    ("sram", "fm_width_exponent", "fm_width_exponent", _number),
    ("sram", "weight_read_bits", "weight_read_bits", _integer),
    ("sram", "weight_access_pj", "weight_access_pj", _number),
    ("sram", "weight_reuse", "weight_reuse", _positive),
    ("dram", "access_bits", "dram_access_bits", _integer),
    ("dram", "access_pj", "dram_access_pj", _number),
)


def _unit(key: str, value: Any, clock_ghz: float) -> UnitSpec:
    """``{parallelism, power_mw}`` (synthesis report) or ``{parallelism, pj_per_op}`` (op table)."""
    if not isinstance(value, Mapping):
        raise ProfileError(
            f"energy profile key '{key}': expected a mapping with parallelism and "
            "power_mw or pj_per_op"
        )
    if "parallelism" not in value:
        raise ProfileError(
            f"energy profile key '{key}.parallelism' is missing; add operations per cycle"
        )
    has_power, has_op = "power_mw" in value, "pj_per_op" in value
    if has_power == has_op:
        raise ProfileError(
            f"energy profile key '{key}': give exactly one of 'power_mw' or 'pj_per_op'"
        )
    unknown = sorted(str(k) for k in value if k not in ("parallelism", "power_mw", "pj_per_op"))
    if unknown:
        raise ProfileError(
            f"unknown energy profile key(s) {[f'{key}.{k}' for k in unknown]}; "
            "allowed: parallelism, power_mw, pj_per_op"
        )
    parallelism = _number(f"{key}.parallelism", value["parallelism"], positive=True)
    if has_power:
        # mW at clock_ghz GHz = pJ per cycle x GHz  ->  pJ per busy cycle = mW / GHz
        cycle_pj = _number(f"{key}.power_mw", value["power_mw"]) / clock_ghz
    else:
        cycle_pj = _number(f"{key}.pj_per_op", value["pj_per_op"]) * parallelism
    return UnitSpec(parallelism=parallelism, cycle_pj=cycle_pj)
