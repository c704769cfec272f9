"""Hardware profiles: the shipped ones load; bad ones are refused naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from boolnas.evaluators.energy import UNIT_NAMES, HardwareProfile, ProfileError, load_profile
from boolnas.evaluators.energy.profile import PROFILE_DIR

SHIPPED = ("boolnet65nm", "horowitz45nm")


def raw(name: str = "boolnet65nm") -> dict:
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name: str) -> None:
    p = load_profile(name)
    assert p.name == name and len(p.units) == len(UNIT_NAMES)
    assert p.fm_width_bits(1) == 64 and p.fm_width_bits(32) == 2048


def test_paper_constants_of_the_default_profile() -> None:
    p = load_profile()
    assert p.name == "boolnet65nm"
    assert (p.fm_buffer_kib, p.weight_buffer_kib, p.clock_ghz) == (192, 288, 1.0)
    units = dict(zip(UNIT_NAMES, p.units, strict=True))
    assert units["binary_conv"].cycle_pj == pytest.approx(108.8)  # 108.8 mW at 1 GHz
    assert units["real_conv"].parallelism == units["binary_conv"].parallelism / 8


def test_every_constant_carries_a_comment() -> None:
    for name in SHIPPED:
        text = (PROFILE_DIR / f"{name}.yaml").read_text()
        data = raw(name)
        for section in ("compute", "precision", "scope", "sram", "dram"):
            keys = [k for k in data[section] if k != "units"]
            for key in keys:
                line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{key}:"))
                idx = text.splitlines().index(line)
                above = text.splitlines()[idx - 1].strip()
                assert "#" in line or above.startswith("#"), (
                    f"{name}: {section}.{key} lacks a comment"
                )


def test_pj_per_op_and_power_forms_agree() -> None:
    data = raw()
    data["compute"]["units"]["binary_conv"] = {"parallelism": 4608, "pj_per_op": 108.8 / 4608}
    a, b = load_profile(data), load_profile()
    assert a.units[0].cycle_pj == pytest.approx(b.units[0].cycle_pj)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("dram",), "'dram' is missing"),
        (("sram", "fm_buffer_kib"), "'sram.fm_buffer_kib' is missing"),
        (("compute", "units", "rprelu"), "'compute.units.rprelu' is missing"),
        (
            ("compute", "units", "binary_conv", "parallelism"),
            "'compute.units.binary_conv.parallelism' is missing",
        ),
        (("scope", "head"), "'scope.head' is missing"),
    ],
)
def test_missing_key_is_named(path: tuple[str, ...], message: str) -> None:
    data = raw()
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        HardwareProfile.from_dict(data)


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("sram", "fm_buffer_kib"), "192KB", "sram.fm_buffer_kib"),  # wrong type
        (("sram", "fm_buffer_kib"), -1, "sram.fm_buffer_kib"),  # negative
        (("dram", "access_pj"), -1500.0, "dram.access_pj"),
        (("dram", "access_bits"), 0, "dram.access_bits"),
        (("sram", "fm_lanes"), 64.5, "sram.fm_lanes"),  # not an integer
        (("precision", "real_weight_bits"), True, "precision.real_weight_bits"),  # bool is no int
        (("compute", "static_fraction"), 1.5, "compute.static_fraction"),  # out of [0, 1]
        (("compute", "clock_ghz"), 0, "compute.clock_ghz"),
        (
            ("compute", "units", "int_add", "power_mw"),
            float("nan"),
            "compute.units.int_add.power_mw",
        ),
        (
            ("compute", "units", "binary_conv", "parallelism"),
            -4,
            "compute.units.binary_conv.parallelism",
        ),
        (("scope", "stem_conv"), "no", "scope.stem_conv"),
        (("sram",), [1, 2], "sram"),
        (("name",), "", "name"),
    ],
)
def test_invalid_value_is_named(path: tuple[str, ...], value: object, key: str) -> None:
    data = raw()
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=f"'{key}'"):
        HardwareProfile.from_dict(data)


def test_unknown_keys_are_refused() -> None:
    data = raw()
    data["sram"]["fm_bufer_kib"] = 192
    with pytest.raises(ProfileError, match="'sram.fm_bufer_kib'"):
        HardwareProfile.from_dict(data)
    data = raw()
    data["compute"]["units"]["binary_conv"]["pj_per_op"] = 0.02  # both forms at once
    with pytest.raises(ProfileError, match="exactly one of 'power_mw' or 'pj_per_op'"):
        HardwareProfile.from_dict(data)


def test_yaml_files_and_names(tmp_path: Path) -> None:
    mine = tmp_path / "mychip.yaml"
    data = copy.deepcopy(raw())
    data["name"] = "mychip"
    data["sram"]["fm_buffer_kib"] = 512
    mine.write_text(yaml.safe_dump(data))
    assert load_profile(str(mine)).fm_buffer_kib == 512
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(str(broken))
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(str(tmp_path / "absent.yaml"))
    with pytest.raises(ProfileError, match="unknown energy profile 'tpu'.*boolnet65nm"):
        load_profile("tpu")
    with pytest.raises(ProfileError, match="must be a mapping"):
        HardwareProfile.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]
