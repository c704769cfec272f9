"""The packed-bit reference: XNOR-popcount sums equal the float simulation's, and the 1-bit MACs
it executes equal the plan's BOPs, the count the energy model costs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from deploy_cases import cases, one_torch_thread, trained_like  # noqa: F401  (autouse fixture)

from boolnas.evaluators.deploy.packed_binary import binary_conv2d_packed, check_network, pack_bits, popcount
from boolnas.evaluators.energy import estimate, load_profile
from boolnas.space import IMAGENET, PRESETS, get_preset, make_plan
from boolnas.space.builder import build

CASES = cases()
PROFILE = load_profile("boolnet65nm")
# BOPs of one 224x224 image counted on the released BoolNet code (docs/bnn-background.md, section 3)
RELEASED_BOPS = {"basenet18_k1": 1.753e9, "basenet18_k4": 1.985e9, "boolnet18_k4": 2.466e9}


def direct_sums(x: np.ndarray, w: np.ndarray, stride: int, padding: int, dilation: int, groups: int) -> np.ndarray:
    """The same convolution as plain integer loops (replicate padding)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="edge")
    n, _, h, wd = x.shape
    c_out, cpg, kh, kw = w.shape
    ho, wo = (h - dilation * (kh - 1) - 1) // stride + 1, (wd - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, c_out, ho, wo), dtype=np.int64)
    xi, wi = x.astype(np.int64), w.astype(np.int64)
    for o, y, z in itertools.product(range(c_out), range(ho), range(wo)):
        g = o // (c_out // groups)
        patch = xi[:, g * cpg:(g + 1) * cpg, y * stride:y * stride + dilation * (kh - 1) + 1:dilation,
                   z * stride:z * stride + dilation * (kw - 1) + 1:dilation]
        out[:, o, y, z] = (patch * wi[o]).sum((1, 2, 3))
    return out


@pytest.mark.parametrize(("channels", "c_out", "kernel", "stride", "padding", "dilation", "groups"), [
    (16, 8, 3, 1, 1, 1, 1),
    (70, 6, 3, 2, 1, 1, 1),  # two words, the second 6/64 full
    (128, 8, 3, 1, 2, 2, 4),  # multi-slice (groups = k), dilated
    (64, 16, 1, 1, 0, 1, 1),
    (8, 4, 3, 1, 1, 1, 2),
])
def test_packed_conv_equals_integer_loops_and_counts_what_it_runs(channels: int, c_out: int, kernel: int, stride: int,
                                                                  padding: int, dilation: int, groups: int) -> None:
    rng = np.random.default_rng(channels + kernel)
    x = rng.choice([-1.0, 1.0], size=(2, channels, 7, 6)).astype(np.float32)
    w = rng.choice([-1.0, 1.0], size=(c_out, channels // groups, kernel, kernel)).astype(np.float32)
    result = binary_conv2d_packed(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = direct_sums(x, w, stride, padding, dilation, groups)
    assert np.array_equal(result.sums, expected)
    outputs = expected.size  # N * C_out * H_out * W_out
    cpg = channels // groups
    assert result.bops == outputs * kernel * kernel * cpg
    assert result.words == outputs * kernel * kernel * -(-cpg // 64)


def test_bits_are_packed_channel_by_channel_from_the_low_bit() -> None:
    bits = np.zeros((1, 66), dtype=bool)
    bits[0, [0, 3, 65]] = True
    words = pack_bits(bits)
    assert words.shape == (1, 2) and words[0, 0] == 0b1001 and words[0, 1] == 0b10
    assert popcount(words).tolist() == [[2, 1]]


def test_packed_conv_refuses_non_binary_operands() -> None:
    with pytest.raises(ValueError, match="must hold"):
        binary_conv2d_packed(np.full((1, 8, 3, 3), 0.5, np.float32), np.ones((4, 8, 1, 1), np.float32))


@pytest.mark.parametrize(("name", "genotype", "task"), CASES, ids=[c[0] for c in CASES])
def test_every_binary_conv_is_bit_exact_and_executes_the_plans_bops(name: str, genotype, task) -> None:
    plan = make_plan(genotype, task)
    torch.manual_seed(0)
    net = trained_like(build(plan))
    report = check_network(net, torch.randn(2, task.in_channels, task.input_size, task.input_size))
    assert report.exact, [c.layer for c in report.layers if not c.sums_exact]
    assert {c.layer for c in report.layers} == {s.name for s in plan if s.is_binary_conv}
    for check in report.layers:
        assert check.bops == check.plan_bops, check
        assert check.scaled_error <= 1e-5, check  # the simulation's alpha-scaled sums are alpha * S up to rounding
    assert report.bops == plan.totals()["bops"] == estimate(plan, PROFILE).bops


@pytest.mark.parametrize("name", ["boolnet18_k4"])
def test_imagenet_preset_executes_the_released_models_bops(name: str) -> None:
    _check_imagenet(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [p for p in PRESETS if p != "boolnet18_k4"])
def test_every_imagenet_preset_executes_its_plans_bops(name: str) -> None:
    _check_imagenet(name)


def _check_imagenet(name: str) -> None:
    plan = make_plan(get_preset(name), IMAGENET)
    torch.manual_seed(0)
    report = check_network(build(plan), torch.randn(1, 3, 224, 224))
    assert report.exact
    assert report.bops == plan.totals()["bops"] == estimate(plan, PROFILE).bops
    assert report.words * 64 == report.bops  # full-width channels fill every 64-bit word
    if name in RELEASED_BOPS:
        assert report.bops == pytest.approx(RELEASED_BOPS[name], rel=5e-4)


def test_a_layer_the_plan_counts_as_binary_must_get_a_binary_operand() -> None:
    plan = make_plan(get_preset("bireal18"), cases()[0][2])
    net = build(plan).eval()
    layer = net.layer("stage1.block0.conv1")  # reads the real stream, binarizes it on the fly
    layer.input_quantizer = None  # the conv now sees real values
    with pytest.raises(ValueError, match="operand is not"):
        check_network(net, torch.randn(1, 1, 12, 12))
