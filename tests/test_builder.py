"""The network builder against the plan: shapes, gradients, binary operands, parameters."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from strategies import genotypes

import boolnas.space as space
from boolnas.space import PRESETS, Genotype, Plan, Tap, Task, get_preset, make_plan
from boolnas.space.builder import ConvLayer, PlanError, PlanNetwork, build
from boolnas.space.quantizers import ProgressiveWeightBinarizer, RSign

SMALL = Task(input_size=28, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
CIFAR_SMALL = Task(input_size=32, in_channels=3, num_classes=10, width_mult=0.25, stem="small")
CIFAR_IMAGENET_STEM = Task(input_size=32, in_channels=3, num_classes=10, width_mult=0.25,
                           stem="imagenet")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and avoids OpenMP spin contention on the
    shared 2-core machine (2 threads ran these tests ~10x slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _is_pm1(t: torch.Tensor) -> bool:
    return bool(((t == 1) | (t == -1)).all())


def check_network(plan: Plan, batch: int = 2, seed: int = 0) -> PlanNetwork:
    """Build ``plan`` and check it against the plan in train and eval mode.

    - every layer's output has shape (N, *spec.out_shape);
    - the operand reaching each conv whose spec says in_bits == 1 is exactly +-1;
    - forward + backward run, and every parameter gets a finite gradient.
    """
    torch.manual_seed(seed)
    net = build(plan)
    shapes: dict[str, tuple[int, ...]] = {}
    binary_ok: dict[str, list[bool]] = {}
    handles = []
    for spec in plan:
        module = net.layer(spec.name)
        handles.append(module.register_forward_hook(
            lambda m, a, out, name=spec.name: shapes.__setitem__(name, tuple(out.shape))))
        if spec.kind in ("conv", "binconv") and spec.in_bits == 1:
            inner = module.conv.conv  # the nn.Conv2d that receives the padded operand
            assert isinstance(inner, torch.nn.Conv2d)
            handles.append(inner.register_forward_pre_hook(
                lambda m, a, name=spec.name: binary_ok.setdefault(name, []).append(_is_pm1(a[0]))))
    t = plan.task
    x = torch.randn(batch, t.in_channels, t.input_size, t.input_size)
    binary_convs = {s.name for s in plan if s.kind in ("conv", "binconv") and s.in_bits == 1}

    def check_pass(mode: str) -> None:
        for spec in plan:
            assert shapes[spec.name] == (batch, *spec.out_shape), (mode, spec.name)
        assert set(binary_ok) == binary_convs
        bad = sorted(name for name, oks in binary_ok.items() if not all(oks))
        assert not bad, f"{mode}: non +-1 operand reaching {bad}"

    net.train()
    y = net(x)
    assert y.shape == (batch, t.num_classes)
    check_pass("train")
    (y * torch.randn_like(y)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"

    shapes.clear()
    binary_ok.clear()
    net.eval()
    with torch.no_grad():
        y_eval = net(x)
    assert y_eval.shape == (batch, t.num_classes) and torch.isfinite(y_eval).all()
    check_pass("eval")
    for h in handles:
        h.remove()
    return net


@pytest.mark.parametrize("name", PRESETS)
def test_presets_build_and_match_plan_on_small_task(name: str) -> None:
    check_network(make_plan(get_preset(name), SMALL), batch=3)


@pytest.mark.parametrize("task", [CIFAR_SMALL, CIFAR_IMAGENET_STEM],
                         ids=["small-stem", "imagenet-stem"])
@pytest.mark.parametrize("name", ["bireal18", "reactnet18", "boolnet18_k4", "boolnet18_k4_star"])
def test_presets_on_32x32_rgb(name: str, task: Task) -> None:
    plan = make_plan(get_preset(name), task)
    if task.stem == "imagenet":
        assert plan["stem.pool"].kind == "pool"
    check_network(plan, batch=2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes())
def test_random_genotypes_build_and_match_plan(genotype: Genotype) -> None:
    plan = make_plan(genotype, SMALL)
    net = check_network(plan, batch=2)
    for spec in plan:
        n = sum(p.numel() for p in net.layer(spec.name).parameters())
        assert n == spec.params + spec.aux_params, spec.name


# --------------------------------------------------------------------------- API
def test_space_build_entry_point_and_layer_lookup() -> None:
    plan = make_plan(get_preset("boolnet18_k4"), SMALL)
    net = space.build(plan)
    assert isinstance(net, PlanNetwork) and net.plan is plan
    assert len(net.layers) == len(plan)
    assert isinstance(net.layer("stage1.block0.conv1"), ConvLayer)
    assert all("." not in key for key in net.layers)
    with pytest.raises(KeyError, match="no layer"):
        net.layer("stage9.block0.conv1")


def test_plan_inconsistencies_are_reported_with_the_layer_name() -> None:
    plan = make_plan(get_preset("basenet18_k4"), SMALL)
    layers = list(plan.layers)
    i = next(i for i, s in enumerate(layers) if s.name == "stage1.block0.conv2")
    layers[i] = layers[i]._replace(inputs=(layers[i].inputs[0], Tap("stem.conv")))
    bad = Plan(genotype=plan.genotype, task=plan.task, layers=tuple(layers), widths=plan.widths)
    with pytest.raises(PlanError, match="stage1.block0.conv2.*residual"):
        build(bad)


def test_wrong_image_channels_are_refused() -> None:
    net = build(make_plan(get_preset("basenet18_k1"), SMALL))
    with pytest.raises(ValueError, match="expected images"):
        net(torch.zeros(2, 3, 28, 28))


def test_set_weight_temperature_reaches_every_binary_conv() -> None:
    plan = make_plan(get_preset("basenet18_k4"), SMALL)
    net = build(plan)
    binarizers = [m for m in net.modules() if isinstance(m, ProgressiveWeightBinarizer)]
    assert len(binarizers) == sum(1 for s in plan if s.kind == "binconv")
    net.set_weight_temperature(0.25)
    assert all(m.temperature == 0.25 for m in binarizers)


def test_sign_grad_picks_the_activation_estimator() -> None:
    for grad in ("ste", "approx"):
        plan = make_plan(Genotype(sign_grad=grad), SMALL)
        net = build(plan)
        from boolnas.space.quantizers import MultiSliceSign

        signs = [m for m in net.modules() if isinstance(m, MultiSliceSign)]
        assert signs and all(m.grad == grad for m in signs)


def test_eval_forward_is_deterministic_and_batch_independent() -> None:
    net = build(make_plan(get_preset("boolnet18_k4"), SMALL)).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        full = net(x)
        single = net(x[:1])
    assert torch.allclose(full[:1], single, atol=1e-5)


def test_logic_blocks_start_as_identities() -> None:
    """The logic-join BN bias init makes XNOR / OR layers pass their residual at init."""
    plan = make_plan(get_preset("basenet18_k4"), SMALL)
    net = build(plan).eval()
    seen: dict[str, float] = {}
    for spec in plan:
        if spec.join in ("xnor", "or"):
            net.layer(spec.name).register_forward_hook(
                lambda m, a, out, name=spec.name: seen.__setitem__(
                    name, float((out == a[1]).float().mean())))
    with torch.no_grad():
        net(torch.randn(2, 1, 28, 28))
    assert seen and min(seen.values()) > 0.99, seen
    plain = build(plan, logic_join_bias=0.0)
    biases = [plain.layer(s.name).bn.bias for s in plan if s.join in ("xnor", "or")]
    assert all(bool((b == 0).all()) for b in biases)


def test_recalibrate_bn_uses_hard_weights_and_restores_state() -> None:
    torch.manual_seed(0)
    plan = make_plan(get_preset("boolnet18_k4"), SMALL)
    net = build(plan)
    net.set_weight_temperature(0.5)
    batches = [torch.randn(4, 1, 28, 28) for _ in range(3)]
    stem = net.layer("stem.conv")
    inputs: list[torch.Tensor] = []
    handle = stem.bn.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
    net.recalibrate_bn(batches)
    handle.remove()
    assert not net.training
    assert all(m.temperature == 0.5 for m in net.modules()
               if isinstance(m, ProgressiveWeightBinarizer))
    assert all(m.momentum == 0.1 for m in net.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    expected = torch.stack([z.mean((0, 2, 3)) for z in inputs]).mean(0)
    assert torch.allclose(stem.bn.running_mean, expected, atol=1e-5)
    with pytest.raises(ValueError, match="at least one batch"):
        net.recalibrate_bn([])


# --------------------------------------------------------------------------- parameter counts
def _param_mismatches(plan: Plan) -> list[tuple[str, int, int]]:
    net = build(plan)
    out = []
    for spec in plan:
        n = sum(p.numel() for p in net.layer(spec.name).parameters())
        if n != spec.params + spec.aux_params:
            out.append((spec.name, n, spec.params + spec.aux_params))
    return out


@pytest.mark.parametrize("name", PRESETS)
def test_parameter_counts_match_plan(name: str) -> None:
    """The energy model counts params / aux_params; the built layers must hold exactly those."""
    assert _param_mismatches(make_plan(get_preset(name), SMALL)) == []


# A 32-bit per_block stage with RSign (extras rprelu) binarizes both the real block input and
# conv1's output with learnable thresholds: c_in + c_out of them, all counted by the plan.
RSIGN_TWICE = Genotype(shortcut="fp32", placement="per_block", extras="rprelu", width_mult=0.5)


def test_parameter_counts_match_plan_when_rsign_binarizes_input_and_output() -> None:
    plan = make_plan(RSIGN_TWICE, SMALL)
    spec = plan["stage1.block0.conv1"]
    layer = build(plan).layer(spec.name)
    assert isinstance(layer.input_quantizer, RSign) and isinstance(layer.output_quantizer, RSign)
    assert _param_mismatches(plan) == []


def test_real_feature_maps_are_freed_after_last_use() -> None:
    """Outputs leave the forward's dict once their last reader ran (memory)."""
    plan = make_plan(get_preset("boolnet18_k4"), SMALL)
    net = build(plan)
    freed = [name for *_, free in net._program for name in free]
    assert len(freed) == len(set(freed))
    assert set(freed) == {"input"} | {s.name for s in plan.layers[:-1]}
    with torch.no_grad():
        assert math.isfinite(float(net(torch.randn(2, 1, 28, 28)).sum()))


def test_rsign_stem_on_a_32_bit_stage_only_thresholds_the_first_operand() -> None:
    plan = make_plan(Genotype(shortcut="fp32", placement="per_block", stem="rsign", extras="none"), SMALL)
    layer = build(plan).layer("stage1.block0.conv1")
    assert isinstance(layer.input_quantizer, RSign)
    assert not isinstance(layer.output_quantizer, RSign)
    assert _param_mismatches(plan) == []
