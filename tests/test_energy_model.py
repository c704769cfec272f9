"""The energy model: structure of the report and properties over random genotypes."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boolnas.evaluators.energy import EnergyReport, HardwareProfile, estimate, load_profile
from boolnas.space import IMAGENET, Genotype, get_preset, make_plan
from boolnas.space.genotype import (
    CHOICES,
    GLOBAL_FIELDS,
    NUM_STAGES,
    PER_STAGE_FIELDS,
    PER_TRANSITION_FIELDS,
)

PROFILE = load_profile("boolnet65nm")
SETTINGS = settings(
    max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def genotypes(draw: st.DrawFn) -> Genotype:
    """Every Genotype field drawn from CHOICES, per stage independently; 1..3 blocks per stage,
    width_mult in {0.5, 1.0, 1.5}: the target-task sizes a search costs."""
    kw: dict = {}
    for name in PER_STAGE_FIELDS:
        values = st.integers(1, 3) if name == "blocks" else st.sampled_from(CHOICES[name])
        kw[name] = draw(st.tuples(*[values] * NUM_STAGES))
    for name in PER_TRANSITION_FIELDS:
        kw[name] = draw(st.tuples(*[st.sampled_from(CHOICES[name])] * (NUM_STAGES - 1)))
    for name in GLOBAL_FIELDS:
        pool = (0.5, 1.0, 1.5) if name == "width_mult" else CHOICES[name]
        kw[name] = draw(st.sampled_from(pool))
    return Genotype(**kw)


def energy(genotype: Genotype, profile: HardwareProfile = PROFILE) -> EnergyReport:
    return estimate(make_plan(genotype, IMAGENET), profile)


# ----------------------------------------------------------------------------- structure
def test_layer_rows_add_up_to_the_totals() -> None:
    r = energy(get_preset("boolnet18_k4"))
    layers = r.layers
    assert math.isclose(sum(x.compute_uJ for x in layers), r.compute_uJ, rel_tol=1e-9)
    assert math.isclose(sum(x.sram_uJ for x in layers), r.sram_uJ, rel_tol=1e-9)
    assert math.isclose(sum(x.dram_uJ for x in layers), r.dram_uJ, rel_tol=1e-9)
    assert math.isclose(sum(x.cycles for x in layers), r.cycles, rel_tol=1e-9)
    assert math.isclose(sum(r.units().values()), r.compute_uJ, rel_tol=1e-9)
    assert r.total_uJ == pytest.approx(r.compute_uJ + r.sram_uJ + r.dram_uJ)


def test_scope_leaves_stem_conv_and_head_to_the_host() -> None:
    plan = make_plan(get_preset("basenet18_k1"), IMAGENET)
    r = estimate(plan, PROFILE)
    assert r.host_layers == ("stem.conv", "stem.pool", "head.pool", "head.fc")
    assert [x.name for x in r.layers][0] == "stem.binarize"
    # op counts still cover the whole plan
    assert (r.bops, r.flops) == (plan.totals()["bops"], plan.totals()["flops"])
    everything = dataclasses.replace(PROFILE, cost_stem_conv=True, cost_head=True)
    full = estimate(plan, everything)
    assert full.host_layers == () and full.total_uJ > r.total_uJ


def test_binary_stage_reads_one_access_per_cycle() -> None:
    """The paper's accounting: a k = 1 binary conv as wide as the array (128 output channels
    >= 72 columns) reads one 64-bit word per cycle."""
    r = energy(get_preset("basenet18_k1"))
    layer = next(x for x in r.layers if x.name == "stage2.block1.conv1")
    operand_bits = layer.sram_fm_read_bits - 128 * 28 * 28  # minus the residual read
    assert operand_bits / 64 == pytest.approx(layer.cycles)


def test_32bit_maps_spill_only_their_excess() -> None:
    """bireal18's 64x56x56 32-bit maps exceed the 192 KB buffer; only the excess goes to DRAM."""
    r = energy(get_preset("bireal18"))
    conv = next(x for x in r.layers if x.name == "stage1.block1.conv1")
    excess = 64 * 56 * 56 * 32 - 192 * 8192
    weights = 9 * 64 * 64 + 2 * 64 * 16
    assert conv.dram_fm_bits == excess * 2  # the input read back, the output written out
    assert conv.dram_weight_bits == weights
    # binary designs keep every map on chip: DRAM holds only weights
    assert energy(get_preset("basenet18_k1")).dram_fm_bits == 0


def test_residuals_stay_alive_across_the_block() -> None:
    r = energy(get_preset("basenet18_k4"))
    conv2 = next(x for x in r.layers if x.name == "stage1.block1.conv2")
    one_map = 4 * 64 * 56 * 56
    assert conv2.fm_live_bits == 3 * one_map  # input h, residual r and the output
    stage1 = next(f for f in r.footprint if f.stage == 1)
    assert stage1.fm_bits == 3 * one_map and not stage1.fm_fits


def test_the_model_imports_neither_torch_nor_hydra() -> None:
    code = (
        "import sys; import boolnas.evaluators.energy as e; e.estimate; "
        "bad = [m for m in ('torch', 'hydra', 'omegaconf', 'optuna', 'plotly') "
        "if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# ----------------------------------------------------------------------------- properties
@SETTINGS
@given(genotypes())
def test_energy_is_finite_and_positive(genotype: Genotype) -> None:
    r = energy(genotype)
    for value in (r.compute_uJ, r.sram_uJ, r.dram_uJ, r.cycles):
        assert math.isfinite(value) and value > 0
    assert all(x.compute_uJ >= 0 and x.sram_uJ >= 0 and x.dram_uJ >= 0 for x in r.layers)


@SETTINGS
@given(genotypes(), st.integers(0, NUM_STAGES - 1))
def test_more_slices_never_lower_energy(genotype: Genotype, stage: int) -> None:
    k = genotype.slices[stage]
    if k == max(CHOICES["slices"]):
        k = min(CHOICES["slices"])
        genotype = dataclasses.replace(
            genotype, slices=tuple(k if i == stage else s for i, s in enumerate(genotype.slices))
        )
    more = tuple(2 * s if i == stage else s for i, s in enumerate(genotype.slices))
    a, b = energy(genotype), energy(dataclasses.replace(genotype, slices=more))
    assert b.compute_uJ >= a.compute_uJ * (1 - 1e-12)
    assert b.sram_uJ >= a.sram_uJ * (1 - 1e-12)
    assert b.dram_uJ >= a.dram_uJ * (1 - 1e-12)
    assert b.total_uJ >= a.total_uJ * (1 - 1e-12)


@SETTINGS
@given(genotypes())
def test_binary_shortcuts_never_raise_energy(genotype: Genotype) -> None:
    """The same design with logic XNOR/OR shortcuts and k-bit maps instead of 32-bit ones.

    Whole networks are compared: a single stage switched to binary can cost more when the next
    stage's 1x1 projection then reads k slices instead of one 32-bit map (the plan counts a
    groups=1 conv over k*C channels, k times the MACs); see docs/energy-model.md ("Tests and benchmark").
    """
    fp32 = energy(dataclasses.replace(genotype, shortcut=("fp32",) * NUM_STAGES))
    binary = energy(dataclasses.replace(genotype, shortcut=("binary",) * NUM_STAGES))
    assert binary.total_uJ <= fp32.total_uJ


@SETTINGS
@given(genotypes(), st.sampled_from((0.5, 1.0, 2.0, 4.0, 16.0)))
def test_larger_feature_map_buffer_never_raises_dram(genotype: Genotype, factor: float) -> None:
    small = dataclasses.replace(PROFILE, fm_buffer_kib=PROFILE.fm_buffer_kib * factor)
    large = dataclasses.replace(PROFILE, fm_buffer_kib=PROFILE.fm_buffer_kib * factor * 2)
    plan = make_plan(genotype, IMAGENET)
    assert estimate(plan, large).dram_uJ <= estimate(plan, small).dram_uJ


def test_a_buffer_holding_every_map_removes_spills() -> None:
    huge = dataclasses.replace(PROFILE, fm_buffer_kib=1e6)
    assert estimate(make_plan(get_preset("bireal18"), IMAGENET), huge).dram_fm_bits == 0


# ----------------------------------------------------------------------------- shortcut spans
MAP_S1 = 64 * 56 * 56 * 32  # a 32-bit stage-1 map on ImageNet
EXCESS_S1 = MAP_S1 - 192 * 8192  # ... over the 192 KB feature-map buffer
H_S1 = 64 * 56 * 56  # the 1-bit map between the two convs of a per-block stage-1 block


def _fp32(placement: str, **choices: object) -> Genotype:
    return Genotype.from_dict({"shortcut": "fp32", "placement": placement, "downsample": "fp32_avgpool",
                               **choices})


def _layer(report: EnergyReport, name: str):  # noqa: ANN202
    return next(x for x in report.layers if x.name == name)


def test_per_block_span_reads_its_block_input_from_dram_once() -> None:
    """Stage 1's 32-bit maps exceed the buffer. Per block: conv1 reads the block input's excess
    back, h (1-bit) stays on chip, the join takes the input from the span's delay line (it is
    read on chip, not from DRAM), the output's excess is written: 2 crossings per block."""
    r = energy(_fp32("per_block"))
    conv1, conv2 = _layer(r, "stage1.block1.conv1"), _layer(r, "stage1.block1.conv2")
    assert conv1.dram_fm_bits == EXCESS_S1 and conv1.dram_fm_write_bits == 0
    assert conv2.sram_residual_bits == MAP_S1
    assert conv2.dram_residual_bits == 0
    assert conv2.dram_fm_bits == conv2.dram_fm_write_bits == EXCESS_S1
    # live at the join: the block input (32-bit), h (1-bit) and the output (32-bit)
    assert conv1.fm_live_bits == MAP_S1 + H_S1
    assert conv2.fm_live_bits == 2 * MAP_S1 + H_S1


def test_per_conv_span_reads_input_and_residual_as_one_map() -> None:
    """The same stage with per-conv (Bi-Real) shortcuts: every conv reads its 32-bit input once
    (operand and residual are the same map) and writes a 32-bit output: 4 crossings per block."""
    r = energy(_fp32("per_conv"))
    for name in ("stage1.block1.conv1", "stage1.block1.conv2"):
        conv = _layer(r, name)
        assert conv.dram_fm_bits == 2 * EXCESS_S1
        assert conv.dram_fm_write_bits == EXCESS_S1 and conv.dram_residual_bits == 0
        assert conv.fm_live_bits == 2 * MAP_S1
    per_block = sum(x.dram_fm_bits for x in energy(_fp32("per_block")).layers if x.stage == 1)
    per_conv = sum(x.dram_fm_bits for x in r.layers if x.stage == 1)
    assert per_block * 2 == per_conv


def test_a_join_whose_residual_no_earlier_layer_read_fetches_it() -> None:
    """The projection's output in a stage's first block is read only by the join: no delay line,
    its excess comes back from DRAM (128x28x28 32-bit maps exceed the buffer)."""
    r = energy(_fp32("per_block"))
    conv2 = _layer(r, "stage2.block0.conv2")
    assert conv2.dram_residual_bits == 128 * 28 * 28 * 32 - 192 * 8192


def test_a_stage_whose_block_input_fits_moves_no_map_over_dram() -> None:
    """Stage 4's 512x7x7 32-bit maps (784 Kibit) fit the 1.5 Mibit buffer: its second block moves
    no map over DRAM (the first reads stage 3's larger map). With a buffer too small for them,
    the per-block span still reads its input once."""
    for placement in ("per_block", "per_conv"):
        r = energy(_fp32(placement))
        block1 = [x for x in r.layers if x.name.startswith("stage4.block1.")]
        assert len(block1) == 2 and all(x.dram_fm_bits == 0 for x in block1)
    small = dataclasses.replace(PROFILE, fm_buffer_kib=64)
    r = estimate(make_plan(_fp32("per_block"), IMAGENET), small)
    excess = 512 * 7 * 7 * 32 - 64 * 8192
    assert _layer(r, "stage4.block0.conv2").dram_fm_write_bits == excess
    conv1, conv2 = _layer(r, "stage4.block1.conv1"), _layer(r, "stage4.block1.conv2")
    assert conv1.dram_fm_bits == excess
    # the delay line serves the join; the network's last output streams into the head
    assert conv2.dram_residual_bits == 0 and conv2.dram_fm_bits == 0


def test_a_strided_projection_reads_back_only_the_pixels_it_uses() -> None:
    """xnornet18's projection is a 32-bit 1x1 conv of stride 2: it fetches a quarter of the
    spilled stage-1 map; an average-pooled projection needs all of it."""
    strided = _layer(energy(get_preset("xnornet18")), "stage2.block0.down")
    assert strided.dram_fm_bits - strided.dram_fm_write_bits == EXCESS_S1 / 4
    pooled = _layer(energy(_fp32("per_block")), "stage2.block0.down")
    assert pooled.dram_fm_bits - pooled.dram_fm_write_bits == EXCESS_S1
