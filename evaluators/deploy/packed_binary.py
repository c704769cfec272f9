"""A bit-exact reference of the binary convolutions: XNOR + popcount on packed 64-bit words.

What a BNN accelerator executes for a binary conv: the +-1 operand and weights as bits (+1 -> 1),
channels packed pixel by pixel into 64-bit words (the storage the energy model assumes), and for
every output value and kernel tap ``popcount(XNOR(a, w) & mask)``; the pre-activation sum is
``S = 2 * matches - L`` with ``L`` the receptive field's bit count. The reference runs in numpy,
independently of torch's convolution, and counts what it executes:

- ``bops``: 1-bit MACs, the valid bits of every XNOR-popcount (the convention of the plan's
  ``bops``, which the energy model costs on the binary conv array);
- ``words``: 64-bit XNOR-popcount operations, the packed work including the unused lanes of a
  partly filled word (what a 64-bit datapath actually spends).

:func:`check_network` runs it on every binary conv of a built network, on the operands the float
simulation produced, and compares its sums with the simulation's and its count with the plan's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from boolnas.evaluators.deploy.inference import binary_weight
from boolnas.space.builder import ConvLayer, PlanNetwork
from boolnas.space.plan import LayerSpec

WORD = 64


@dataclass(frozen=True)
class PackedConvResult:
    """Integer sums ``(N, C_out, H_out, W_out)`` and the operations executed for them (all images)."""

    sums: np.ndarray
    bops: int
    words: int


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of every uint64 word (numpy >= 2 has it built in; a byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[words.view(np.uint8)].reshape(*words.shape, 8).sum(-1, dtype=np.uint8)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Bool ``(..., C)`` -> uint64 ``(..., ceil(C / 64))``, channel c at bit ``c % 64`` of word
    ``c // 64``; the lanes past C are 0."""
    c = bits.shape[-1]
    words = -(-c // WORD)
    padded = np.zeros((*bits.shape[:-1], words * WORD), dtype=np.uint8)
    padded[..., :c] = bits
    return np.packbits(padded, axis=-1, bitorder="little").view("<u8")


def binary_conv2d_packed(operand: np.ndarray, weight: np.ndarray, *, stride: int = 1, padding: int = 0,
                         dilation: int = 1, groups: int = 1) -> PackedConvResult:
    """Binary convolution of +-1 ``operand`` ``(N, C, H, W)`` with +-1 ``weight``
    ``(C_out, C / groups, kh, kw)``, replicate-padded by ``padding``, by XNOR-popcount."""
    if not (np.isin(operand, (-1.0, 1.0)).all() and np.isin(weight, (-1.0, 1.0)).all()):
        raise ValueError("binary_conv2d_packed: operand and weights must hold +-1 only")
    n, c, h, w = operand.shape
    c_out, cpg, kh, kw = weight.shape
    if c != cpg * groups or c_out % groups:
        raise ValueError(f"binary_conv2d_packed: {c} operand channels, weights {weight.shape}, groups {groups}")
    if padding:
        operand = np.pad(operand, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="edge")
        h, w = h + 2 * padding, w + 2 * padding
    h_out = (h - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w - dilation * (kw - 1) - 1) // stride + 1
    opg = c_out // groups
    # (N, G, H, W, cpg) and (G, opg, kh, kw, cpg): channels last, packed into words
    a = pack_bits((operand > 0).reshape(n, groups, cpg, h, w).transpose(0, 1, 3, 4, 2))
    wt = pack_bits((weight > 0).reshape(groups, opg, cpg, kh, kw).transpose(0, 1, 3, 4, 2))
    mask = pack_bits(np.ones(cpg, dtype=bool))
    valid = int(popcount(mask).sum())  # == cpg
    matches = np.zeros((n, groups, h_out, w_out, opg), dtype=np.int64)
    bops = words = 0
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dilation, j * dilation
                window = a[:, g, y0:y0 + stride * (h_out - 1) + 1:stride, x0:x0 + stride * (w_out - 1) + 1:stride]
                xnor = ~(window[:, :, :, None, :] ^ wt[g, :, i, j][None, None, None]) & mask
                matches[:, g] += popcount(xnor).sum(-1, dtype=np.int64)
                words += xnor.size
                bops += xnor.size // mask.size * valid
    sums = 2 * matches - cpg * kh * kw
    return PackedConvResult(sums.transpose(0, 1, 4, 2, 3).reshape(n, c_out, h_out, w_out), bops, words)


# --------------------------------------------------------------------------- a whole network
@dataclass(frozen=True)
class LayerCheck:
    """One binary conv: operations per image (counted / the plan's) and how its sums compare."""

    layer: str
    bops: int
    plan_bops: int
    words: int
    sums_exact: bool  # the packed sums equal the float simulation's integer sums
    scaled_error: float  # max |simulation output - alpha * S| / (alpha * L): float rounding of the scaled sum


@dataclass(frozen=True)
class ReferenceReport:
    layers: tuple[LayerCheck, ...]
    images: int

    @property
    def bops(self) -> int:
        """1-bit MACs executed per image, every binary conv."""
        return sum(c.bops for c in self.layers)

    @property
    def words(self) -> int:
        return sum(c.words for c in self.layers)

    @property
    def exact(self) -> bool:
        return all(c.sums_exact for c in self.layers)

    def summary(self) -> str:
        return (f"{len(self.layers)} binary convs, {self.images} image(s): sums "
                f"{'exact' if self.exact else 'NOT exact'}, {self.bops:,} BOPs executed per image "
                f"({self.words:,} 64-bit XNOR-popcounts)")


@contextmanager
def _operands(net: PlanNetwork, specs: list[LayerSpec]) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Record (operand, conv output) of the conv of every layer in ``specs``."""
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    handles = []
    for spec in specs:
        conv = net.layer(spec.name).conv
        handles.append(conv.register_forward_hook(
            lambda m, args, out, name=spec.name: seen.__setitem__(name, (args[0].detach(), out.detach()))))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _is_binary_layer(net: PlanNetwork, spec: LayerSpec) -> bool:
    """Binary weights in the built network (the operand is checked when it runs)."""
    module = net.layer(spec.name)
    return isinstance(module, ConvLayer) and spec.kind == "binconv"


def check_network(net: PlanNetwork, images: Tensor) -> ReferenceReport:
    """Run ``net`` (eval mode) on ``images`` and every binary conv again on the packed reference.

    Raises ``ValueError`` when a layer the plan counts as binary gets a non-+-1 operand, or one
    with binary weights and a +-1 operand is not counted as binary by the plan.
    """
    plan = net.plan
    candidates = [s for s in plan if s.kind in ("conv", "binconv")]
    was_training = net.training
    net.eval()
    try:
        with _operands(net, candidates) as seen, torch.no_grad():
            net(images)
    finally:
        net.train(was_training)
    checks = []
    n = images.shape[0]
    for spec in candidates:
        operand, out = seen[spec.name]
        pm1 = bool(((operand == 1) | (operand == -1)).all())
        binary = _is_binary_layer(net, spec) and pm1
        if spec.is_binary_conv and not binary:
            raise ValueError(f"layer {spec.name!r}: the plan counts it as a binary conv, but its "
                             f"{'weights are real' if pm1 else 'operand is not +-1'}")
        if not binary:
            continue
        signs, alpha = binary_weight(net.layer(spec.name), spec.name)
        x = operand.flatten(1, 2) if operand.dim() == 5 else operand
        result = binary_conv2d_packed(x.numpy(), signs.numpy(), stride=spec.stride, padding=spec.padding,
                                      dilation=spec.dilation, groups=spec.groups)
        padded = F.pad(x, (spec.padding,) * 4, mode="replicate") if spec.padding else x
        float_sums = F.conv2d(padded, signs, None, spec.stride, 0, spec.dilation, spec.groups)
        sums = torch.from_numpy(result.sums)
        exact = float_sums.shape == sums.shape and bool(torch.equal(float_sums.double(), sums.double()))
        fan_in = signs[0].numel()
        scale = (alpha.double() * fan_in).clamp_min(torch.finfo(torch.float32).tiny).view(1, -1, 1, 1)
        scaled_error = float(((out.double() - alpha.double().view(1, -1, 1, 1) * sums.double()).abs() / scale).max())
        checks.append(LayerCheck(spec.name, result.bops // n, spec.bops, result.words // n, exact, scaled_error))
    return ReferenceReport(tuple(checks), n)
