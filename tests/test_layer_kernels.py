"""Fast paths of the BNN layers against their plain PyTorch references (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from boolnas.space.layers import ConcatShuffle, channel_shuffle, replicate_pad


def _reference_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Replicate padding by clamped gather indices: every padded pixel copies the nearest
    border pixel (independent of F.pad, which the fast path calls)."""
    x = x.flatten(1, 2) if x.dim() == 5 else x
    rows = torch.arange(-p, x.shape[-2] + p).clamp(0, x.shape[-2] - 1)
    cols = torch.arange(-p, x.shape[-1] + p).clamp(0, x.shape[-1] - 1)
    return x[..., rows, :][..., cols]


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (2, 4, 3, 5, 5), (1, 2, 3, 1, 1), (2, 3, 2, 1), (1, 1, 2, 2, 3)])
def test_replicate_pad_matches_clamped_gather_in_values_and_gradients(shape: tuple[int, ...], p: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    out = replicate_pad(x, p)
    assert torch.equal(out, _reference_pad(x, p))
    up = torch.randn_like(out)
    grads = []
    for fn in (replicate_pad, _reference_pad):
        leaf = x.clone().requires_grad_()
        fn(leaf, p).backward(up)
        grads.append(leaf.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: replicate_pad(t, p), (x.clone().requires_grad_(),))


def test_replicate_pad_reads_a_strided_channel_range_and_keeps_pm1() -> None:
    """A tap (a channel range of a wider binary map) is padded without a separate flatten copy."""
    torch.manual_seed(1)
    wide = torch.randn(2, 4, 8, 5, 5).sign()
    tap = wide[:, :, 2:6]
    assert not tap.is_contiguous()
    out = replicate_pad(tap, 1)
    assert out.shape == (2, 16, 7, 7) and out.is_contiguous()
    assert torch.equal(out, _reference_pad(tap.contiguous(), 1))
    assert bool(((out == 1) | (out == -1)).all())


@pytest.mark.parametrize("five_d", [False, True])
def test_concat_shuffle_of_equal_halves_equals_cat_then_shuffle(five_d: bool) -> None:
    torch.manual_seed(2)
    shape = (2, 3, 4, 5, 5) if five_d else (2, 4, 5, 5)
    dim = 2 if five_d else 1
    a = torch.randn(*shape, requires_grad=True)
    b = torch.randn(*shape, requires_grad=True)
    out = ConcatShuffle()(a, b)
    ref = channel_shuffle(torch.cat((a, b), dim=dim), 2, dim)
    assert torch.equal(out, ref)
    up = torch.randn_like(out)
    ga = torch.autograd.grad(out, (a, b), up)
    gr = torch.autograd.grad(ref, (a, b), up)
    assert all(torch.equal(x, y) for x, y in zip(ga, gr))


def test_concat_shuffle_of_unequal_parts_keeps_the_general_path() -> None:
    a = torch.arange(2.0).view(1, 2, 1, 1)
    b = torch.arange(10.0, 14.0).view(1, 4, 1, 1)
    out = ConcatShuffle()(a, b)
    assert torch.equal(out, channel_shuffle(torch.cat((a, b), 1), 2, 1))
