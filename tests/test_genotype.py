"""Genotype: validation, YAML round trip, stable keys."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from strategies import genotypes

from boolnas.space import PRESETS, Genotype, get_preset
from boolnas.space.genotype import CHOICES


@pytest.mark.parametrize("name", PRESETS)
def test_preset_yaml_round_trip_is_lossless(name: str) -> None:
    g = get_preset(name)
    text = yaml.safe_dump(g.to_dict())
    back = Genotype.from_dict(yaml.safe_load(text))
    assert back == g
    assert back.key() == g.key()


def test_mixed_genotype_round_trip_keeps_per_stage_lists() -> None:
    g = Genotype(shortcut=["fp32", "binary", "binary", "fp32"], slices=[1, 2, 4, 8],
                 downsample=["strided", "fp32_avgpool", "binary_maxpool"], blocks=[1, 2, 3, 2])
    d = g.to_dict()
    assert d["slices"] == [1, 2, 4, 8]
    assert d["feature_reuse"] is False  # uniform fields collapse to scalars
    assert Genotype.from_dict(yaml.safe_load(yaml.safe_dump(d))) == g


def test_scalar_and_uniform_list_are_the_same_architecture() -> None:
    a = Genotype.from_dict({"slices": 4})
    b = Genotype.from_dict({"slices": [4, 4, 4, 4]})
    assert a == b and hash(a) == hash(b) and a.key() == b.key()


def test_key_ignores_placement_of_binary_stages_only() -> None:
    binary_a = Genotype(shortcut="binary", placement="per_conv")
    binary_b = Genotype(shortcut="binary", placement="per_block")
    assert binary_a.key() == binary_b.key()
    fp32_a = Genotype(shortcut="fp32", placement="per_conv")
    fp32_b = Genotype(shortcut="fp32", placement="per_block")
    assert fp32_a.key() != fp32_b.key()


def test_keys_of_presets_are_distinct() -> None:
    assert len({get_preset(n).key() for n in PRESETS}) == len(PRESETS)


def test_genotype_is_frozen_and_hashable() -> None:
    g = get_preset("boolnet18_k4")
    with pytest.raises(AttributeError):
        g.stem = "plain"  # type: ignore[misc]
    assert {g: 1}[get_preset("boolnet18_k4")] == 1


@pytest.mark.parametrize(
    ("data", "field", "hint"),
    [
        ({"slice": 4}, "slice", "unknown"),
        ({"slices": 3}, "slices", "[1, 2, 4, 8]"),
        ({"slices": "4"}, "slices", "expected int"),
        ({"slices": True}, "slices", "expected int"),
        ({"slices": [1, 2]}, "slices", "list of 4"),
        ({"shortcut": "fp16"}, "shortcut", "['binary', 'fp32']"),
        ({"placement": 1}, "placement", "expected str"),
        ({"downsample": "avgpool"}, "downsample", "binary_maxpool"),
        ({"downsample": ["strided"] * 4}, "downsample", "list of 3"),
        ({"feature_reuse": "yes"}, "feature_reuse", "expected bool"),
        ({"stem": "conv"}, "stem", "las"),
        ({"extras": "prelu"}, "extras", "rprelu"),
        ({"dilated_last": 1}, "dilated_last", "expected bool"),
        ({"sign_grad": "tanh"}, "sign_grad", "approx"),
        ({"width_mult": -1.0}, "width_mult", "range"),
        ({"width_mult": "wide"}, "width_mult", "number"),
        ({"blocks": 0}, "blocks", "1..8"),
        ({"blocks": 2.5}, "blocks", "integer"),
    ],
)
def test_invalid_input_names_the_field(data: dict, field: str, hint: str) -> None:
    with pytest.raises(ValueError) as info:
        Genotype.from_dict(data)
    message = str(info.value)
    assert f"'{field}'" in message
    assert hint in message


def test_non_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="mapping"):
        Genotype.from_dict(["slices", 4])  # type: ignore[arg-type]


def test_every_choice_is_accepted() -> None:
    for name, allowed in CHOICES.items():
        for value in allowed:
            stored = getattr(Genotype.from_dict({name: value}), name)
            assert set(stored) == {value} if isinstance(stored, tuple) else stored == value


@settings(max_examples=300, deadline=None)
@given(genotypes())
def test_random_genotypes_round_trip_through_yaml(g: Genotype) -> None:
    back = Genotype.from_dict(yaml.safe_load(yaml.safe_dump(g.to_dict())))
    assert back == g and back.key() == g.key()
