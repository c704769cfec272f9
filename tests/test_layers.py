"""Quantizers and BNN layers: forward values and surrogate gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from boolnas.space.layers import (
    LAS,
    BinaryConv2d,
    ConcatShuffle,
    MultiSliceConv2d,
    OrJoin,
    RPReLU,
    XnorJoin,
    channel_shuffle,
    logic_or,
    xnor,
)
from boolnas.space.quantizers import (
    MultiSliceSign,
    ProgressiveWeightBinarizer,
    RSign,
    Sign,
    WeightBinarizer,
    approx_sign,
    sign_ste,
    slice_offsets,
)

POINTS = [-2.0, -1.0, -0.75, -0.5, -1e-7, 0.0, 1e-7, 0.5, 0.75, 1.0, 2.0]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and avoids OpenMP spin contention on the
    shared 2-core machine (2 threads ran these tests ~10x slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hard_sign(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0)


def _grad_of(fn, x: torch.Tensor, upstream: torch.Tensor | None = None) -> torch.Tensor:
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    y.backward(torch.ones_like(y) if upstream is None else upstream)
    return x.grad


def _is_pm1(t: torch.Tensor) -> bool:
    return bool(((t == 1) | (t == -1)).all())


# --------------------------------------------------------------------------- activation signs
def test_sign_forward_maps_zero_to_plus_one() -> None:
    x = torch.tensor(POINTS + [-0.0])
    expected = torch.tensor([-1.0] * 5 + [1.0] * 6 + [1.0])
    assert torch.equal(sign_ste(x), expected)
    assert torch.equal(approx_sign(x), expected)
    assert torch.equal(Sign("approx")(x), expected)


def test_sign_ste_gradient_is_clipped_identity() -> None:
    x = torch.tensor(POINTS)
    upstream = torch.arange(1.0, len(POINTS) + 1)
    g = _grad_of(sign_ste, x, upstream)
    assert torch.equal(g, upstream * (x.abs() <= 1))
    assert g[0] == 0 and g[-1] == 0 and g[1] == upstream[1] and g[-2] == upstream[-2]


def test_approx_sign_gradient_is_piecewise_quadratic_derivative() -> None:
    x = torch.tensor(POINTS)
    g = _grad_of(approx_sign, x)
    expected = torch.clamp(2 - 2 * x.abs(), min=0)
    assert torch.allclose(g, expected)
    assert g[0] == 0 and g[1] == 0 and g[5] == 2.0  # zero outside (-1, 1), 2 at 0
    assert g[3] == pytest.approx(1.0)


@pytest.mark.parametrize("k,expected", [
    (1, [0.0]), (2, [-1 / 2, 1 / 2]), (4, [-2 / 3, -1 / 3, 1 / 3, 2 / 3]),
    (8, [-0.8, -0.6, -0.4, -0.2, 0.2, 0.4, 0.6, 0.8]),
])
def test_slice_offsets_match_released_models(k: int, expected: list[float]) -> None:
    assert slice_offsets(k) == pytest.approx(expected)
    assert torch.allclose(MultiSliceSign(k).offsets, torch.tensor(expected))


def test_single_slice_sign_of_negative_zero_is_plus_one() -> None:
    x = torch.tensor([-0.0, 0.0, -1e-30]).view(1, 3, 1, 1)
    assert MultiSliceSign(1)(x).flatten().tolist() == [1.0, 1.0, -1.0]


def test_unsupported_slice_count_is_refused() -> None:
    with pytest.raises(ValueError, match="k=3"):
        MultiSliceSign(3)


@pytest.mark.parametrize("grad", ["ste", "approx"])
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_multi_slice_sign_values_and_gradient(k: int, grad: str) -> None:
    torch.manual_seed(k)
    x = torch.randn(3, 5, 4, 6) * 1.5
    q = MultiSliceSign(k, grad)
    out = q(x)
    assert out.shape == (3, k, 5, 4, 6)
    offsets = slice_offsets(k)
    for j, o in enumerate(offsets):
        assert torch.equal(out[:, j], _hard_sign(x + o)), f"slice {j}"
    assert _is_pm1(out)
    # Thermometer code: slices are ordered by offset, so they are monotone in j.
    assert bool((out[:, 1:] >= out[:, :-1]).all())
    upstream = torch.randn(3, k, 5, 4, 6)
    g = _grad_of(q, x, upstream)
    expected = torch.zeros_like(x)
    for j, o in enumerate(offsets):
        t = x + o
        d = (t.abs() <= 1).float() if grad == "ste" else torch.clamp(2 - 2 * t.abs(), min=0)
        expected += upstream[:, j] * d
    assert torch.allclose(g, expected, atol=1e-5)


def test_multi_slice_sign_matches_naive_detach_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)

    def naive(t: torch.Tensor) -> torch.Tensor:
        outs = []
        for o in slice_offsets(4):
            s = t + o
            c = s.clamp(-1, 1)
            outs.append(c + (_hard_sign(s) - c).detach())
        return torch.stack(outs, 1)

    up = torch.randn(2, 4, 8, 5, 5)
    assert torch.equal(MultiSliceSign(4)(x), naive(x))
    assert torch.allclose(_grad_of(MultiSliceSign(4), x, up), _grad_of(naive, x, up), atol=1e-6)


def test_multi_slice_sign_rejects_binary_input() -> None:
    with pytest.raises(ValueError, match="real"):
        MultiSliceSign(2)(torch.zeros(1, 2, 3, 4, 4))


def test_rsign_thresholds_are_learnable_per_channel() -> None:
    q = RSign(channels=3, k=2)
    assert q.threshold.shape == (3,) and q.threshold.requires_grad
    x = torch.tensor([-0.3, 0.2, 0.6]).view(1, 3, 1, 1)
    # Zero thresholds: plain 2-slice sign, offsets -1/2 and +1/2.
    assert torch.equal(q(x).flatten(), torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))
    with torch.no_grad():
        q.threshold.copy_(torch.tensor([0.9, -0.8, 0.0]))
    out = q(x)
    for j, o in enumerate(slice_offsets(2)):
        assert torch.equal(out[:, j], _hard_sign(x + q.threshold.view(1, 3, 1, 1) + o))
    out.sum().backward()
    assert q.threshold.grad is not None and q.threshold.grad.shape == (3,)
    # Channel 0: x + b = 0.6, slices at 0.1 and 1.1 -> only the first is inside the clip.
    assert q.threshold.grad[0] == 1.0


# --------------------------------------------------------------------------- weight binarizers
def _weights() -> torch.Tensor:
    torch.manual_seed(1)
    w = torch.randn(4, 3, 3, 3) * 0.6
    w[0, 0, 0, 0] = 1.7  # outside the clip
    w[1, 0, 0, 0] = -2.5
    w[2, 0, 0, 0] = 0.0
    return w


def test_weight_binarizer_forward_is_scaled_sign() -> None:
    w = _weights()
    out = WeightBinarizer()(w)
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(out, alpha * _hard_sign(w))
    for o in range(4):
        assert set(out[o].unique().tolist()) <= {alpha[o].item(), -alpha[o].item()}


def test_weight_binarizer_gradient_is_clipped_straight_through() -> None:
    w = _weights()
    up = torch.randn_like(w)

    def reference(t: torch.Tensor) -> torch.Tensor:
        c = t.clamp(-1, 1)
        return t.abs().mean(dim=(1, 2, 3), keepdim=True) * (c + (_hard_sign(t) - c).detach())

    g = _grad_of(WeightBinarizer(), w, up)
    assert torch.allclose(g, _grad_of(reference, w, up), atol=1e-6)
    # Through the sign alone, entries with |W| > 1 get no gradient.
    from boolnas.space.quantizers import _WeightFn

    g_sign = _grad_of(lambda t: _WeightFn.apply(t, None), w, up)
    assert torch.equal(g_sign, up * (w.abs() <= 1))
    assert g_sign[0, 0, 0, 0] == 0 and g_sign[1, 0, 0, 0] == 0


def test_progressive_binarizer_soft_in_training_hard_in_eval() -> None:
    w = _weights()
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    q = ProgressiveWeightBinarizer()
    assert q.temperature == 1.0
    q.train()
    soft = q(w)
    assert torch.allclose(soft, alpha * F.hardtanh(w))
    assert not torch.allclose(soft.abs(), alpha.expand_as(w))  # not binary at T = 1
    q.eval()
    assert torch.allclose(q(w), alpha * _hard_sign(w))
    q.train()
    q.set_temperature(1e-6)  # T -> 0: the soft forward becomes the sign
    nonzero = w != 0
    assert torch.allclose(q(w)[nonzero], (alpha * _hard_sign(w)).expand_as(w)[nonzero])
    q.eval()
    assert torch.allclose(q(w), alpha * _hard_sign(w))  # eval ignores T


def test_progressive_binarizer_gradient_ignores_temperature() -> None:
    w = _weights()
    up = torch.randn_like(w)
    from boolnas.space.quantizers import _WeightFn

    g = _grad_of(lambda x: _WeightFn.apply(x, 0.25), w, up)
    assert torch.equal(g, up * (w.abs() <= 1))  # clipped identity, no 1/T factor
    q = ProgressiveWeightBinarizer(0.25).train()
    w_leaf = w.clone().requires_grad_()
    q(w_leaf).backward(up)
    assert w_leaf.grad is not None and torch.isfinite(w_leaf.grad).all()


def test_progressive_binarizer_temperature_is_saved_and_zero_means_hard_sign() -> None:
    q = ProgressiveWeightBinarizer()
    q.set_temperature(0.5)
    state = q.state_dict()
    other = ProgressiveWeightBinarizer()
    other.load_state_dict(state)
    assert other.temperature == 0.5
    w = _weights()
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    q.train()
    q.set_temperature(0.0)  # progressive binarization off: hard sign in training too
    assert torch.equal(q(w), alpha * _hard_sign(w))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            q.set_temperature(bad)


# --------------------------------------------------------------------------- logic joins
PM = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])


def test_xnor_truth_table() -> None:
    out = XnorJoin()(PM[:, 0], PM[:, 1])
    assert out.tolist() == [1.0, -1.0, -1.0, 1.0]
    assert torch.equal(xnor(PM[:, 0], PM[:, 1]), out)


def test_or_truth_table() -> None:
    out = OrJoin()(PM[:, 0], PM[:, 1])
    assert out.tolist() == [-1.0, 1.0, 1.0, 1.0]
    x, y = PM[:, 0], PM[:, 1]
    assert torch.equal(out, 2 * torch.clamp((x + 1) / 2 + (y + 1) / 2, 0, 1) - 1)


def test_logic_joins_have_gradients() -> None:
    x = PM[:, 0].clone().requires_grad_()
    y = PM[:, 1].clone().requires_grad_()
    (xnor(x, y).sum() + logic_or(x, y).sum()).backward()
    # d(xy)/dx = y; OR passes the gradient unless both inputs are already +1.
    assert torch.equal(x.grad, PM[:, 1] + torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert torch.equal(y.grad, PM[:, 0] + torch.tensor([1.0, 1.0, 1.0, 0.0]))


def test_or_gradient_equals_the_clamp_formula_on_real_inputs() -> None:
    torch.manual_seed(5)
    x = torch.randn(50) * 1.5
    y = torch.randn(50) * 1.5
    x[:4] = torch.tensor([-1.0, 1.0, 0.0, 1.0])  # boundary cases of clamp: s = 0, 1, 2
    y[:4] = torch.tensor([1.0, -1.0, 0.0, 0.0])
    up = torch.randn(50)

    def reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 2 * torch.clamp((a + 1) / 2 + (b + 1) / 2, 0, 1) - 1

    grads = []
    for fn in (logic_or, reference):
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        out = fn(a, b)
        out.backward(up)
        grads.append((out.detach(), a.grad, b.grad))
    for mine, ref in zip(grads[0], grads[1], strict=True):
        assert torch.allclose(mine, ref, atol=1e-6)


# --------------------------------------------------------------------------- convolutions
def test_replicate_padding_keeps_pm1_and_matches_reference() -> None:
    torch.manual_seed(2)
    x = _hard_sign(torch.randn(2, 4, 3, 5, 5))  # (N, k, C, H, W)
    conv = BinaryConv2d(12, 8, 3, padding=2, dilation=2, groups=4).eval()
    seen = []
    conv.conv.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    out = conv(x)
    (operand,) = seen
    assert operand.shape == (2, 12, 9, 9)
    assert _is_pm1(operand)
    w = conv.conv.kernel_quantizer(conv.weight)
    ref = F.conv2d(F.pad(x.flatten(1, 2), (2, 2, 2, 2), mode="replicate"), w, dilation=2, groups=4)
    assert torch.allclose(out, ref)
    assert out.shape == (2, 8, 5, 5)


def test_binary_conv_weights_are_binary_in_eval_and_small_at_init() -> None:
    conv = BinaryConv2d(8, 8, 3, padding=1)
    assert conv.weight.abs().max() < 0.05
    conv.eval()
    w = conv.conv.kernel_quantizer(conv.weight)
    alpha = conv.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(w.abs(), alpha.expand_as(w))


def test_multi_slice_conv_groups_keep_slices_apart() -> None:
    torch.manual_seed(3)
    k, c, c_out = 4, 3, 8
    conv = MultiSliceConv2d(k * c, c_out, 3, padding=1, groups=k, padding_mode="replicate")
    x = _hard_sign(torch.randn(1, k, c, 6, 6))
    y0 = conv(x)
    x2 = x.clone()
    x2[:, 0] = -x2[:, 0]  # flip slice 0 only
    y1 = conv(x2)
    changed = (y0 - y1).abs().flatten(2).amax(-1).squeeze(0) > 0
    per_group = c_out // k
    assert changed[:per_group].all() and not changed[per_group:].any()


def test_zero_padding_mode_pads_inside_the_inner_conv() -> None:
    conv = MultiSliceConv2d(3, 4, 3, padding=1)
    assert conv.pad is None and conv.conv.padding == (1, 1)
    assert conv(torch.randn(1, 3, 5, 5)).shape == (1, 4, 5, 5)


# --------------------------------------------------------------------------- real blocks
def test_channel_shuffle_interleaves_two_maps() -> None:
    a = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
    b = torch.tensor([10.0, 11.0, 12.0]).view(1, 3, 1, 1)
    out = ConcatShuffle()(a, b)
    assert out.flatten().tolist() == [0.0, 10.0, 1.0, 11.0, 2.0, 12.0]
    a5 = torch.stack([a, a + 100], 1)  # (1, 2, 3, 1, 1): two slices
    b5 = torch.stack([b, b + 100], 1)
    out5 = ConcatShuffle()(a5, b5)
    assert out5.shape == (1, 2, 6, 1, 1)
    assert out5[0, 1].flatten().tolist() == [100.0, 110.0, 101.0, 111.0, 102.0, 112.0]
    with pytest.raises(ValueError, match="groups"):
        channel_shuffle(torch.zeros(1, 3, 1, 1), 2)


def test_las_is_sum_of_two_normalized_branches() -> None:
    torch.manual_seed(4)
    las = LAS(6)
    x = torch.randn(2, 6, 5, 5, requires_grad=True)
    z = las(x)
    assert z.shape == x.shape
    ref = las.bn_a(x) + las.bn_c(las.depthwise(las.bn_b(x)))
    assert torch.allclose(z, ref)
    z.sum().backward()
    assert las.depthwise.weight.grad is not None and las.depthwise.groups == 6


def test_rprelu_shifts_before_and_after() -> None:
    m = RPReLU(2)
    with torch.no_grad():
        m.shift_in.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
        m.shift_out.copy_(torch.tensor([0.5, 0.0]).view(1, 2, 1, 1))
        m.prelu.weight.fill_(0.1)
    x = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1)
    # ch0: PReLU(0 - 1) + 0.5 = -0.1 + 0.5; ch1: PReLU(0 + 1) + 0 = 1.
    assert torch.allclose(m(x).flatten(), torch.tensor([0.4, 1.0]))
    assert sum(p.numel() for p in m.parameters()) == 3 * 2
