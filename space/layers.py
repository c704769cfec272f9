"""BNN building blocks: convolutions with quantizers, logic joins, LAS, RPReLU, shuffle.

Binary maps are ``(N, k, C, H, W)`` tensors of exact +-1 values (k slices); real maps are
``(N, C, H, W)``. See docs/bnn-background.md, section 1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from boolnas.space.quantizers import ProgressiveWeightBinarizer, clip_bound


class QuantConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight goes through an optional ``kernel_quantizer`` (larq style).

    No bias: every conv of the plan is followed by BatchNorm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        kernel_quantizer: nn.Module | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=False)
        self.kernel_quantizer = kernel_quantizer

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight if self.kernel_quantizer is None else self.kernel_quantizer(self.weight)
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)


class _ReplicatePadFn(torch.autograd.Function):
    """Replicate padding by ``p`` on both spatial sides, flattening a 5-D ``(N, k, C, H, W)``
    operand slice-major to ``(N, k*C, H+2p, W+2p)``.

    Forward: ``F.pad(..., mode='replicate')`` (pure copies, so +-1 stays +-1). Backward: the
    border gradients are folded back with a few row and column additions instead of aten's
    replication_pad2d_backward, the slow part on CPU: 0.22 against 0.34 ms on a (32, 64, 16, 16)
    gradient, 0.7 against 2.8 ms on a (128, 64, 16, 16) one (2 threads).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: int) -> Tensor:
        ctx.p, ctx.in_shape = p, x.shape
        return F.pad(x.flatten(1, 2) if x.dim() == 5 else x, (p, p, p, p), mode="replicate")

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        p = ctx.p
        h, w = grad.shape[-2] - 2 * p, grad.shape[-1] - 2 * p
        rows = grad[..., p:p + h, :].clone()  # padded rows onto the border rows (contiguous runs)
        for i in range(p):
            rows[..., 0, :] += grad[..., i, :]
            rows[..., h - 1, :] += grad[..., p + h + i, :]
        gx = rows[..., p:p + w].clone()  # then padded columns onto the border columns
        for i in range(p):
            gx[..., 0] += rows[..., i]
            gx[..., w - 1] += rows[..., p + w + i]
        return gx.view(ctx.in_shape), None


def replicate_pad(x: Tensor, p: int) -> Tensor:
    """``x`` ``(N, C, H, W)`` or ``(N, k, C, H, W)`` replicate-padded by ``p`` pixels on every
    side, as ``(N, k*C, H+2p, W+2p)``; see :class:`_ReplicatePadFn`."""
    return _ReplicatePadFn.apply(x, p)


class MultiSliceConv2d(nn.Module):
    """A convolution over a (possibly multi-slice) operand.

    A 5-D input ``(N, k, C, H, W)`` is flattened slice-major to ``(N, k*C, H, W)``; ``groups``
    counts over those flattened channels (``groups == k``: each slice convolved on its own).
    ``padding_mode='replicate'`` pads explicitly (:func:`replicate_pad`) so padded values stay +-1 and
    the inner :class:`QuantConv2d` (``self.conv``, which receives the padded operand) runs with
    padding 0; ``'zeros'`` lets the inner conv zero-pad.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        kernel_quantizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if padding_mode not in ("zeros", "replicate"):
            raise ValueError(f"padding_mode must be 'zeros' or 'replicate', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.pad = (padding,) * 4 if padding_mode == "replicate" and padding > 0 else None
        self.conv = QuantConv2d(
            in_channels, out_channels, kernel_size, stride=stride,
            padding=0 if padding_mode == "replicate" else padding, dilation=dilation,
            groups=groups, kernel_quantizer=kernel_quantizer,
        )

    @property
    def weight(self) -> nn.Parameter:
        return self.conv.weight

    def forward(self, x: Tensor) -> Tensor:
        if self.pad is not None:
            return self.conv(replicate_pad(x, self.pad[0]))
        return self.conv(x.flatten(1, 2) if x.dim() == 5 else x)


class BinaryConv2d(MultiSliceConv2d):
    """Binary (multi-slice) conv: replicate padding and progressively binarized weights.

    The operand must already be binary (+-1); weights are small at init (kaiming x 0.01, as
    in the released BoolNet models), which only matters for the soft phase of progressive
    binarization since alpha rescales the sign.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        padding_mode: str = "replicate",
        kernel_quantizer: nn.Module | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, padding_mode=padding_mode,
            kernel_quantizer=kernel_quantizer if kernel_quantizer is not None
            else ProgressiveWeightBinarizer(),
        )
        with torch.no_grad():
            nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
            self.conv.weight.mul_(0.01)


# --------------------------------------------------------------------------- logic joins
def xnor(x: Tensor, y: Tensor) -> Tensor:
    """XNOR in +-1 arithmetic: x * y (differentiable in both operands)."""
    return x * y


class _OrFn(torch.autograd.Function):
    """clamp(x + y + 1, -1, 1) with clamp's gradient (1 where -1 <= x + y + 1 <= 1) in one
    fused pass; autograd's clamp backward runs four (ge, le, and, where)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor) -> Tensor:
        s = x + y + 1.0
        ctx.save_for_backward(s)
        return s.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        (s,) = ctx.saved_tensors
        b = clip_bound(s.dtype)  # strict |s| < b is exactly |s| <= 1
        g = torch.ops.aten.hardtanh_backward(grad, s, -b, b)
        return g, g


def logic_or(x: Tensor, y: Tensor) -> Tensor:
    """OR in +-1 arithmetic: 2 * clamp((x+1)/2 + (y+1)/2, 0, 1) - 1, computed as
    clamp(x + y + 1, -1, 1): equal values and equal (clamp) gradients, fewer passes."""
    return _OrFn.apply(x, y)


class XnorJoin(nn.Module):
    """Logic shortcut XNOR(x, residual); both binary maps of the same shape."""

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return xnor(x, residual)


class OrJoin(nn.Module):
    """Logic shortcut OR(x, residual); both binary maps of the same shape."""

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return logic_or(x, residual)


# --------------------------------------------------------------------------- real blocks
class LAS(nn.Module):
    """Local adaptive shifting (BoolNet stem): z = BN_a(x) + BN_c(depthwise_kxk(BN_b(x))).

    A learned per-pixel, per-channel shift of the binarization threshold that follows.
    """

    def __init__(
        self, channels: int, kernel_size: int = 3, padding: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.bn_a = nn.BatchNorm2d(channels)
        self.bn_b = nn.BatchNorm2d(channels)
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=padding,
                                   dilation=dilation, groups=channels, bias=False)
        self.bn_c = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn_a(x) + self.bn_c(self.depthwise(self.bn_b(x)))


class RPReLU(nn.Module):
    """ReActNet's RPReLU: PReLU(x - gamma_c) + zeta_c with learnable per-channel shifts."""

    def __init__(self, channels: int, init: float = 0.25) -> None:
        super().__init__()
        self.shift_in = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.prelu = nn.PReLU(channels, init=init)
        self.shift_out = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.prelu(x - self.shift_in) + self.shift_out


def channel_shuffle(x: Tensor, groups: int = 2, dim: int = 1) -> Tensor:
    """Interleave the ``groups`` equal parts of dimension ``dim`` (ShuffleNet)."""
    c = x.shape[dim]
    if c % groups:
        raise ValueError(f"channel shuffle: {c} channels do not split into {groups} groups")
    shape = x.shape
    x = x.reshape(*shape[:dim], groups, c // groups, *shape[dim + 1:])
    return x.transpose(dim, dim + 1).reshape(shape)


class ConcatShuffle(nn.Module):
    """Concatenate two maps along the channel dim, then channel-shuffle with 2 groups.

    Works on real ``(N, C, H, W)`` and binary ``(N, k, C, H, W)`` maps (channel dim 1 or 2).
    """

    def __init__(self, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        dim = 2 if a.dim() == 5 else 1
        if self.groups == 2 and a.shape[dim] == b.shape[dim]:
            # Equal halves: the shuffle of the concatenation interleaves a and b channel by
            # channel, which one stack writes directly (one copy instead of cat + shuffle's two).
            return torch.stack((a, b), dim=dim + 1).flatten(dim, dim + 1)
        return channel_shuffle(torch.cat((a, b), dim=dim), self.groups, dim)
