"""BatchNorm folding for inference: what is exact, and the arithmetic of each case.

Eval-mode BatchNorm is a per-channel affine map ``y = a * z + b`` with ``a = gamma / sqrt(var +
eps)`` and ``b = beta - mean * a``. Where it can go:

- **into the preceding real conv** (``W' = a * W``, bias ``b``) when the conv's output reaches
  the BN directly (no pooling in between): exact, the conv is linear per output channel.
- **into integer thresholds** when the BN's input is the integer sum ``S`` of a binary conv (with
  its weight scale ``alpha > 0``, possibly max-pooled) and its output goes straight into a
  (multi-slice) sign: ``sign(alpha * a * S + b + o) = [flip * S >= T]`` with ``flip = sign(a)``
  and ``T = ceil(-(b + o) / |alpha * a|)``, one integer per (slice, channel). The sign of ``a``
  is kept as the flip, so a negative BN scale stays exact; ``a == 0`` makes the output constant.
- **kept as an affine** (scale, shift) everywhere else: a BN whose output is added to a shortcut
  or passes an RPReLU before the sign, a BN after a max-pool of real values (pooling and a
  negative scale do not commute), a BN on a real map feeding a sign (a threshold on a real value
  would round differently from the float computation near it), and LAS's ``BN_b`` before its
  zero-padded depthwise conv (the zero padding of ``BN_b(x)`` is not ``BN_b`` of a padding).
  The weight scale ``alpha`` of a binary conv folds into that affine's scale, so the conv keeps
  its +-1 weights.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor, nn

SUM_LIMIT = 2**24  # binary conv sums stay below this, so they are exact in float32


def bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The eval-mode BN as ``(scale, shift)`` per channel, in float32 as PyTorch computes it."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    with torch.no_grad():
        invstd = 1.0 / torch.sqrt(bn.running_var.float() + bn.eps)
        scale = invstd * (bn.weight.float() if bn.weight is not None else 1.0)
        shift = (bn.bias.float() if bn.bias is not None else 0.0) - bn.running_mean.float() * scale
    return scale.detach().clone(), shift.detach().clone()


def fold_into_conv(weight: Tensor, scale: Tensor, shift: Tensor, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(W', b')`` of a conv followed directly by the affine ``(scale, shift)``."""
    with torch.no_grad():
        w = weight.float() * scale.view(-1, *([1] * (weight.dim() - 1)))
        b = shift.clone() if bias is None else bias.float() * scale + shift
    return w, b


def integer_thresholds(alpha: Tensor, scale: Tensor, shift: Tensor, slice_bias: Tensor) -> tuple[Tensor, Tensor]:
    """Thresholds of ``sign(alpha * scale * S + shift + slice_bias)`` over integer sums ``S``.

    ``alpha`` (the binary conv's weight scale), ``scale``, ``shift``: ``(C,)``; ``slice_bias``:
    ``(k, C)`` (the slice offsets plus any RSign thresholds, as the quantizer adds them). Returns
    ``flip`` ``(C,)`` in {-1, 0, +1} and integer ``T`` ``(k, C)`` such that the output is +1
    exactly when ``flip * S >= T`` (0 maps to +1, as the quantizer does). Computed in exact
    rational arithmetic from the float32 parameters, so a decision can differ from the float
    computation only where ``alpha * scale * S + shift + bias`` is within float rounding of 0.
    """
    k, channels = slice_bias.shape
    a = [Fraction(float(x)) * Fraction(float(y)) for x, y in zip(alpha.tolist(), scale.tolist())]
    b = [Fraction(float(x)) for x in shift.tolist()]
    thresholds = torch.empty(k, channels, dtype=torch.float64)
    for i, row in enumerate(slice_bias.tolist()):
        for j, o in enumerate(row):
            c = b[j] + Fraction(float(o))
            if a[j] == 0:  # constant output sign(c): 0 >= 0 holds, 0 >= 1 does not
                thresholds[i, j] = 0.0 if c >= 0 else 1.0
            else:
                t = math.ceil(-c / abs(a[j]))  # |S| < 2**24: a threshold beyond that acts the same
                thresholds[i, j] = float(max(-SUM_LIMIT, min(SUM_LIMIT, t)))
    flip = torch.tensor([(x > 0) - (x < 0) for x in a], dtype=torch.float32)
    return flip, thresholds.float()
