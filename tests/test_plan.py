"""Plan: op counts against the reference, structure and totals."""

from __future__ import annotations

import pytest

from boolnas.space import IMAGENET, PRESETS, Genotype, Task, get_preset, make_plan
from boolnas.space.plan import INPUT

# ImageNet OPs (x1e8) of the reference table, and BOPs measured on the released code.
REFERENCE_OPS = {
    "xnornet18": 1.59e8, "bireal18": 1.63e8, "reactnet18": 1.63e8, "basenet18_k1": 1.51e8,
    "basenet18_k4": 1.54e8, "boolnet18_k4": 1.64e8, "boolnet18_k4_star": 1.76e8,
}
REFERENCE_BOPS = {"basenet18_k1": 1.753e9, "basenet18_k4": 1.985e9, "boolnet18_k4": 2.466e9}
SMALL = Task(input_size=28, in_channels=1, num_classes=10, width_mult=0.25, stem="small")


@pytest.mark.parametrize("name", PRESETS)
def test_imagenet_ops_within_6_percent_of_reference(name: str) -> None:
    ops = make_plan(get_preset(name), IMAGENET).totals()["ops"]
    assert abs(ops / REFERENCE_OPS[name] - 1) <= 0.06, ops


@pytest.mark.parametrize("name", sorted(REFERENCE_BOPS))
def test_bops_within_3_percent_of_released_code(name: str) -> None:
    bops = make_plan(get_preset(name), IMAGENET).totals()["bops"]
    assert abs(bops / REFERENCE_BOPS[name] - 1) <= 0.03, bops


def test_totals_keys_and_ops_convention() -> None:
    t = make_plan(get_preset("boolnet18_k4"), IMAGENET).totals()
    assert set(t) == {"bops", "flops", "ops", "params_binary", "params_real", "size_bits"}
    assert t["ops"] == t["flops"] + t["bops"] / 64
    assert t["size_bits"] == t["params_binary"] + 32 * t["params_real"]


def test_slices_do_not_change_3x3_macs_but_widen_downsample() -> None:
    k1 = make_plan(get_preset("basenet18_k1"), IMAGENET)
    k4 = make_plan(get_preset("basenet18_k4"), IMAGENET)
    for a, b in zip(k1, k4):
        assert a.name == b.name
        if a.kernel == 3 and a.kind == "binconv":
            assert a.macs == b.macs
        if a.role == "downsample":
            assert b.macs == 4 * a.macs


def test_fp32_designs_store_32_bit_maps_and_binary_designs_k_bits() -> None:
    bireal = make_plan(get_preset("bireal18"), IMAGENET)
    basenet = make_plan(get_preset("basenet18_k4"), IMAGENET)
    blocks = [s for s in bireal if s.kind == "binconv" and s.role != "downsample"]
    assert all(s.in_bits == 1 and s.src_bits == 32 and s.out_bits == 32 for s in blocks)
    inner = [s for s in basenet if s.kind == "binconv" and s.name != "stage4.block1.conv2"]
    assert all(s.src_bits == 1 and s.out_bits == 1 and s.out_slices == 4 for s in inner)
    # BaseNet's exit: a 32-bit sum feeds the head.
    assert basenet["stage4.block1.conv2"].join == "add_mean"
    assert basenet["stage4.block1.conv2"].out_bits == 32


def test_feature_reuse_doubles_stored_width_and_last_block_drops_it() -> None:
    plan = make_plan(get_preset("boolnet18_k4"), IMAGENET)
    assert plan["stage2.block0.shuffle"].out_shape == (4, 256, 28, 28)
    assert plan["stage2.block1.conv1"].c_in == 128  # convolves the first half
    assert plan["head.fc"].c_in == 512


def test_dilated_last_stage_keeps_14x14() -> None:
    plan = make_plan(get_preset("boolnet18_k4_star"), IMAGENET)
    assert plan["stage4.block0.conv1"].out_shape[-2:] == (14, 14)
    assert plan["stage4.block1.conv1"].dilation == 2
    assert plan["stage4.block0.down"].post_pool == "none"


def test_small_task_spatial_sizes_and_width_mult() -> None:
    plan = make_plan(get_preset("basenet18_k1"), SMALL)
    assert plan.widths == (16, 32, 64, 128)
    assert plan["stage1.block0.conv1"].out_shape == (1, 16, 28, 28)
    assert plan["stage4.block0.down"].out_shape == (1, 128, 4, 4)  # 7 -> 4 with ceil
    assert plan["stage4.block0.conv1"].out_shape == (1, 128, 4, 4)


@pytest.mark.parametrize("name", PRESETS)
def test_taps_read_earlier_layers_with_matching_formats(name: str) -> None:
    plan = make_plan(get_preset(name), SMALL)
    seen = {INPUT}
    for spec in plan:
        for tap in spec.inputs:
            assert tap.src in seen, (spec.name, tap)
        seen.add(spec.name)
        if spec.join in ("xnor", "or"):
            residual = plan[spec.inputs[1].src]
            assert residual.out_bits == 1 and residual.out_slices == spec.out_slices


def test_mixed_design_transitions_are_planned() -> None:
    g = Genotype(shortcut=["fp32", "binary", "fp32", "binary"], slices=[1, 4, 2, 8],
                 downsample=["fp32_avgpool", "binary_maxpool", "strided"])
    plan = make_plan(g, SMALL)
    # binary stage 2 reads stage 1's 32-bit map and binarizes it with its own k=4
    assert plan["stage2.block0.conv1"].src_bits == 32
    assert plan["stage2.block0.conv1"].in_slices == 4
    # fp32 stage 3 reads stage 2's 4-slice map as it is
    assert plan["stage3.block0.conv1"].src_slices == 4 and plan["stage3.block0.conv1"].groups == 4
    # binary stage 4 after a k=2 fp32 stage: the strided binary projection re-binarizes with k=8
    assert plan["stage4.block0.down"].out_slices == 8


def test_task_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="'stem'"):
        Task.from_conf("imagenet", stem="tiny")
    with pytest.raises(ValueError, match="'num_classes'"):
        Task.from_conf("imagenet", num_classes=0)
    with pytest.raises(ValueError, match="unknown task field"):
        Task.from_dict({"size": 3})
    partial = {k: v for k, v in IMAGENET.to_dict().items() if k != "width_mult"}
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['width_mult'\]"):  # conf/ holds the defaults, not Task
        Task.from_dict(partial)
