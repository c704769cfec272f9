"""The inference form of a built network: explicit signs, +-1 weights, folded BatchNorm.

:func:`to_inference` turns a :class:`~space.builder.PlanNetwork` (trained or fresh) into an
:class:`InferenceNetwork` that computes the same logits in eval mode with plain tensor ops only
(no autograd functions, no straight-through estimators), so it exports to ONNX and TorchScript:

- every binarizer is an explicit ``where(x + bias >= 0, +1, -1)`` (0 maps to +1, as the
  quantizer does; ONNX's ``Sign`` would map 0 to 0), the bias holding the multi-slice offsets
  and any RSign thresholds; binary maps keep the multi-slice layout ``(N, k, C, H, W)``;
- binary convs keep +-1 weights (``sign(W)``) and replicate padding, so their outputs are the
  exact integer sums ``S`` of XNOR-popcount; the weight scale alpha moves into the BN that follows;
- BatchNorm is folded where that is exact (see :mod:`evaluators.deploy.fold`): into integer
  thresholds on ``S`` before a sign, into real convs, else kept as a per-channel affine;
- XNOR and OR joins of +-1 maps are ``x * r`` and ``max(x, r)``.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from boolnas.evaluators.deploy.fold import bn_affine, fold_into_conv, integer_thresholds
from boolnas.space.builder import BinarizeLayer, ConvLayer, HeadLayer, LASLayer, PlanNetwork, PoolLayer
from boolnas.space.layers import ConcatShuffle, channel_shuffle
from boolnas.space.plan import INPUT, LayerSpec, Plan, Tap
from boolnas.space.quantizers import MultiSliceSign, RSign, WeightBinarizer

logger = logging.getLogger(__name__)


class DeployError(ValueError):
    """A network that cannot be put in inference form; the message names the layer."""


def decision_name(layer: str, which: str) -> str:
    """The name of a binarizer of plan layer ``layer``: ``which`` is ``in`` (a real source
    binarized as a conv's operand) or ``out`` (the layer's output binarized). ONNX values and
    parity reports use it."""
    return f"{layer}/{which}_sign"


def pm1(t: Tensor) -> Tensor:
    """+1 where ``t >= 0``, else -1 (the quantizers' sign, exported as GreaterOrEqual + Where)."""
    return torch.where(t >= 0, 1.0, -1.0)


# --------------------------------------------------------------------------- small modules
class SliceSign(nn.Module):
    """Real ``(N, C, H, W)`` -> binary ``(N, k, C, H, W)``: slice j = sign(x + bias_j)."""

    bias: Tensor

    def __init__(self, bias: Tensor) -> None:
        super().__init__()
        self.register_buffer("bias", bias.detach().float().clone())  # (1, k, C or 1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return pm1(x.unsqueeze(1) + self.bias)


class ThresholdSign(nn.Module):
    """Integer sums ``S`` ``(N, C, H, W)`` -> binary ``(N, k, C, H, W)``: +1 where flip * S >= T.

    The folded form of BN -> (multi-slice) sign after a binary conv; ``flip`` is the sign of the
    folded BN scale (``0`` for a zero scale: a constant output)."""

    flip: Tensor
    thresholds: Tensor

    def __init__(self, flip: Tensor, thresholds: Tensor) -> None:
        super().__init__()
        k, c = thresholds.shape
        self.register_buffer("flip", flip.float().view(1, 1, c, 1, 1).clone())
        self.register_buffer("thresholds", thresholds.float().view(1, k, c, 1, 1).clone())

    def forward(self, s: Tensor) -> Tensor:
        return torch.where(s.unsqueeze(1) * self.flip >= self.thresholds, 1.0, -1.0)


class Affine(nn.Module):
    """Per-channel ``z * scale + shift`` on ``(N, C, H, W)``: an unfolded BatchNorm."""

    scale: Tensor
    shift: Tensor

    def __init__(self, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().float().view(1, -1, 1, 1).clone())
        self.register_buffer("shift", shift.detach().float().view(1, -1, 1, 1).clone())

    def forward(self, z: Tensor) -> Tensor:
        return z * self.scale + self.shift


class FixedConv(nn.Module):
    """A convolution with fixed weights; a 5-D operand is flattened slice-major first, and
    ``replicate`` padding is applied explicitly (ONNX ``Pad`` mode ``edge``) so +-1 stays +-1."""

    weight: Tensor
    bias: Tensor | None

    def __init__(self, weight: Tensor, bias: Tensor | None, *, stride: int, padding: int, dilation: int,
                 groups: int, padding_mode: str) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.replicate = padding if padding_mode == "replicate" else 0
        self.padding = 0 if padding_mode == "replicate" else padding

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:
            x = x.flatten(1, 2)
        if self.replicate:
            p = self.replicate
            x = F.pad(x, (p, p, p, p), mode="replicate")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


# --------------------------------------------------------------------------- layers
class ConvInference(nn.Module):
    """A ``conv`` / ``binconv`` layer in the plan's processing order (see LayerSpec)."""

    def __init__(self, spec: LayerSpec, *, pre_pool: nn.Module | None, in_sign: SliceSign | None, conv: FixedConv,
                 post_pool: nn.Module | None, norm: Affine | None, norm_mean: Affine | None,
                 act: nn.Module | None, out_sign: nn.Module | None) -> None:
        super().__init__()
        self.pre_pool, self.in_sign, self.conv, self.post_pool = pre_pool, in_sign, conv, post_pool
        self.norm, self.norm_mean, self.act, self.out_sign = norm, norm_mean, act, out_sign
        self.join = spec.join

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if self.pre_pool is not None:
            x = self.pre_pool(x.flatten(1, 2) if x.dim() == 5 else x)
        if self.in_sign is not None:
            x = self.in_sign(x)
        z = self.conv(x)
        if self.post_pool is not None:
            z = self.post_pool(z)
        if self.norm is not None:
            z = self.norm(z)
        if self.join == "add":
            assert residual is not None
            z = z + residual
        elif self.join == "add_mean":
            assert residual is not None and self.norm_mean is not None
            z = z + self.norm_mean(residual.mean(1))
        if self.act is not None:
            z = self.act(z)
        if self.out_sign is not None:
            z = self.out_sign(z)
        if self.join == "xnor":
            assert residual is not None
            z = z * residual
        elif self.join == "or":
            assert residual is not None
            z = torch.maximum(z, residual)
        return z


class LASInference(nn.Module):
    """LAS with BN_c folded into the depthwise conv: ``A(x) + dwconv(B(x))`` -> slice sign."""

    def __init__(self, bn_a: Affine, bn_b: Affine, depthwise: FixedConv, out_sign: SliceSign | None) -> None:
        super().__init__()
        self.bn_a, self.bn_b, self.depthwise, self.out_sign = bn_a, bn_b, depthwise, out_sign

    def forward(self, x: Tensor) -> Tensor:
        z = self.bn_a(x) + self.depthwise(self.bn_b(x))
        return z if self.out_sign is None else self.out_sign(z)


class BinarizeInference(nn.Module):
    """BN (affine) -> multi-slice sign."""

    def __init__(self, norm: Affine | None, sign: SliceSign) -> None:
        super().__init__()
        self.norm, self.sign = norm, sign

    def forward(self, x: Tensor) -> Tensor:
        return self.sign(x if self.norm is None else self.norm(x))


class ShuffleInference(nn.Module):
    """Concatenate two maps along the channel dim and interleave them (2-group channel shuffle),
    on real ``(N, C, H, W)`` or binary ``(N, k, C, H, W)`` maps (:class:`~space.layers.ConcatShuffle`)."""

    def __init__(self, binary: bool, equal_halves: bool) -> None:
        super().__init__()
        self.dim = 2 if binary else 1
        self.equal_halves = equal_halves

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if self.equal_halves:  # interleave a and b channel by channel
            return torch.stack((a, b), dim=self.dim + 1).flatten(self.dim, self.dim + 1)
        return channel_shuffle(torch.cat((a, b), dim=self.dim), 2, self.dim)


class HeadInference(nn.Module):
    """PReLU -> global average pool."""

    def __init__(self, act: nn.Module | None) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        return (x if self.act is None else self.act(x)).mean((2, 3))


# --------------------------------------------------------------------------- conversion
def slice_bias(quantizer: nn.Module, name: str) -> Tensor:
    """``(k, C or 1)`` bias a (multi-slice) sign adds before its comparison, as it computes it."""
    if not isinstance(quantizer, MultiSliceSign):
        raise DeployError(f"layer {name!r}: unsupported binarizer {type(quantizer).__name__}")
    with torch.no_grad():
        offsets = quantizer.offsets.float().view(-1, 1)
        if isinstance(quantizer, RSign):
            return offsets + quantizer.threshold.float().view(1, -1)
        return offsets


def _slice_sign(quantizer: nn.Module | None, name: str) -> SliceSign | None:
    if quantizer is None:
        return None
    bias = slice_bias(quantizer, name)
    return SliceSign(bias.view(1, bias.shape[0], bias.shape[1], 1, 1))


def _in_eval(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` in eval mode, leaving the module's mode as it was."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module(x)
    finally:
        module.train(was_training)


def binary_weight(layer: ConvLayer, name: str) -> tuple[Tensor, Tensor]:
    """``(sign(W), alpha)`` of a binary conv: the +-1 weights and the per-output-channel scale
    its weight quantizer multiplies them by in eval (checked against the quantizer itself)."""
    inner = layer.conv.conv
    quantizer = inner.kernel_quantizer
    if not isinstance(quantizer, WeightBinarizer):
        raise DeployError(f"layer {name!r}: binary conv with an unsupported weight quantizer "
                          f"{type(quantizer).__name__}")
    with torch.no_grad():
        w = inner.weight.detach().float()
        signs = pm1(w + 0.0)  # as the quantizer: -0.0 becomes +0.0, which maps to +1
        alpha = w.abs().mean(dim=(1, 2, 3))
    effective = _in_eval(quantizer, w)
    if not torch.equal(effective, alpha.view(-1, 1, 1, 1) * signs):
        raise DeployError(f"layer {name!r}: the weight quantizer does not compute alpha * sign(W) in eval")
    return signs, alpha


def _conv(layer: ConvLayer, spec: LayerSpec) -> ConvInference:
    name = spec.name
    kw = dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
              padding_mode=spec.padding_mode)
    bn = bn_affine(layer.bn) if layer.bn is not None else None
    norm: Affine | None = None
    out_sign: nn.Module | None = None
    ends_in_sign = layer.output_quantizer is not None
    if spec.is_binary_conv:
        signs, alpha = binary_weight(layer, name)
        conv = FixedConv(signs, None, **kw)
        scale, shift = bn if bn is not None else (torch.ones_like(alpha), torch.zeros_like(alpha))
        if ends_in_sign and spec.join not in ("add", "add_mean") and layer.act is None:
            flip, thresholds = integer_thresholds(alpha, scale, shift,
                                                  slice_bias(layer.output_quantizer, name).expand(-1, spec.c_out))
            out_sign = ThresholdSign(flip, thresholds)
        else:
            norm = Affine(alpha * scale, shift)
    else:
        inner = layer.conv.conv
        weight = (inner.weight if inner.kernel_quantizer is None
                  else _in_eval(inner.kernel_quantizer, inner.weight)).detach().float()
        if bn is not None and layer.post_pool is None:
            conv = FixedConv(*fold_into_conv(weight, *bn), **kw)
        else:
            conv = FixedConv(weight, None, **kw)
            norm = Affine(*bn) if bn is not None else None
    if ends_in_sign and out_sign is None:
        out_sign = _slice_sign(layer.output_quantizer, name)
    return ConvInference(
        spec, pre_pool=copy.deepcopy(layer.pre_pool), in_sign=_slice_sign(layer.input_quantizer, name), conv=conv,
        post_pool=copy.deepcopy(layer.post_pool), norm=norm,
        norm_mean=Affine(*bn_affine(layer.bn_mean)) if layer.bn_mean is not None else None,
        act=copy.deepcopy(layer.act), out_sign=out_sign)


def _las(layer: LASLayer, spec: LayerSpec) -> LASInference:
    las = layer.las
    dw = las.depthwise
    weight, bias = fold_into_conv(dw.weight.detach(), *bn_affine(las.bn_c))
    depthwise = FixedConv(weight, bias, stride=1, padding=int(dw.padding[0]), dilation=int(dw.dilation[0]),
                          groups=dw.groups, padding_mode="zeros")
    return LASInference(Affine(*bn_affine(las.bn_a)), Affine(*bn_affine(las.bn_b)), depthwise,
                        _slice_sign(layer.output_quantizer, spec.name))


def _shuffle(module: ConcatShuffle, spec: LayerSpec, plan: Plan) -> ShuffleInference:
    if module.groups != 2:
        raise DeployError(f"layer {spec.name!r}: channel shuffle with {module.groups} groups (2 supported)")
    widths = []
    for tap in spec.inputs:
        src = plan[tap.src]
        widths.append((src.c_out if tap.hi is None else tap.hi) - tap.lo)
    return ShuffleInference(binary=spec.out_bits == 1, equal_halves=widths[0] == widths[1])


def _layer(module: nn.Module, spec: LayerSpec, plan: Plan) -> nn.Module:
    if isinstance(module, ConvLayer):
        return _conv(module, spec)
    if isinstance(module, LASLayer):
        return _las(module, spec)
    if isinstance(module, BinarizeLayer):
        sign = _slice_sign(module.quantizer, spec.name)
        assert sign is not None
        return BinarizeInference(Affine(*bn_affine(module.bn)) if module.bn is not None else None, sign)
    if isinstance(module, PoolLayer):
        return copy.deepcopy(module.pool)
    if isinstance(module, HeadLayer):
        return HeadInference(copy.deepcopy(module.act))
    if isinstance(module, ConcatShuffle):
        return _shuffle(module, spec, plan)
    if isinstance(module, nn.Linear):
        return copy.deepcopy(module)
    raise DeployError(f"layer {spec.name!r}: no inference form for {type(module).__name__}")


def _key(name: str) -> str:
    return name.replace(".", "__")


class InferenceNetwork(nn.Module):
    """The inference form of a plan's network: same DAG, same outputs, exportable ops only."""

    def __init__(self, plan: Plan, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleDict({_key(name): m for name, m in layers.items()})
        last_use: dict[str, int] = {}
        for i, s in enumerate(plan):
            for tap in s.inputs:
                last_use[tap.src] = i
        # per layer: (plan name, module key, taps, outputs whose last reader it is)
        self.program: list[tuple[str, str, tuple[Tap, ...], tuple[str, ...]]] = [
            (s.name, _key(s.name), s.inputs, tuple(sorted({t.src for t in s.inputs if last_use[t.src] == i})))
            for i, s in enumerate(plan)
        ]
        self._output = plan.layers[-1].name

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``."""
        outputs: dict[str, Tensor] = {INPUT: x}
        for name, key, taps, free in self.program:
            args = []
            for tap in taps:
                y = outputs[tap.src]
                if tap.lo != 0 or tap.hi is not None:
                    y = y[:, :, tap.lo:tap.hi] if y.dim() == 5 else y[:, tap.lo:tap.hi]
                args.append(y)
            out = self.layers[key](*args)
            for src in free:
                del outputs[src]
            outputs[name] = out
        return outputs[self._output]


def to_inference(net: PlanNetwork) -> InferenceNetwork:
    """The inference form of ``net`` (its current weights and BN statistics; ``net`` is unchanged)."""
    was_training = net.training
    net.eval()
    try:
        layers = {spec.name: _layer(net.layer(spec.name), spec, net.plan) for spec in net.plan}
    finally:
        net.train(was_training)
    inference = InferenceNetwork(net.plan, layers).eval()
    for p in inference.parameters():
        p.requires_grad_(False)
    folded = sum(isinstance(m, ThresholdSign) for m in inference.modules())
    logger.debug("inference form of %d layers: %d BN -> sign folded into integer thresholds", len(layers), folded)
    return inference
