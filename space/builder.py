"""Network builder: ``build(plan) -> PlanNetwork``, one module per LayerSpec of the plan.

The plan is validated first (space/plan_checks.py: the checks the energy model makes too; a
:class:`PlanError` names the layer and the field). The network is assembled from the plan alone
(the only genotype choice read is ``plan.sign_grad``, the surrogate gradient of activation
signs), so the built network and the energy model see the same architecture. Each layer
module's output has shape ``(N, *spec.out_shape)``: binary maps ``(N, k, C, H, W)`` of exact
+-1 values (also for ``k = 1``), real maps ``(N, C, H, W)``, ``head`` ``(N, C)``, ``fc``
``(N, classes)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from boolnas.space.layers import (
    LAS,
    BinaryConv2d,
    ConcatShuffle,
    MultiSliceConv2d,
    OrJoin,
    RPReLU,
    XnorJoin,
)
from boolnas.space.plan import INPUT, LAYER_KINDS, REAL_BITS, LayerSpec, Plan, Tap
from boolnas.space.plan_checks import PlanError, check_binarizer, check_conv, validate
from boolnas.space.quantizers import MultiSliceSign, ProgressiveWeightBinarizer, RSign

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    """ModuleDict key of plan layer ``name`` (keys cannot contain '.')."""
    return name.replace(".", "__")


def _binarizer(kind: str, channels: int, k: int, grad: str, layer: str) -> nn.Module:
    check_binarizer(kind, layer)
    return MultiSliceSign(k, grad) if kind == "sign" else RSign(channels, k, grad)


# --------------------------------------------------------------------------- layer modules
class ConvLayer(nn.Module):
    """A ``conv`` / ``binconv`` spec, in the LayerSpec processing order::

        pre_pool -> binarize operand -> conv -> post_pool -> BN -> add / add_mean join
        -> act -> binarize output -> xnor / or join

    ``logic_join_bias`` b initializes the BN bias of a layer with a logic join to +b (XNOR)
    or -b (OR), so that at init its binarized output is all +1 (XNOR) or all -1 (OR) and the
    join passes the residual through unchanged: an identity-at-init block, like zero-init of a
    ResNet's last BN. With the usual zero bias the random +-1 branch scrambles the residual,
    class information is gone after stage 1 and BaseNet did not learn at all on the synthetic
    proxy task (300 steps); with b = 1 it learned in 16 steps.
    """

    def __init__(self, spec: LayerSpec, sign_grad: str, logic_join_bias: float = 1.0) -> None:
        super().__init__()
        s = spec
        check_conv(s)  # the spec's fields (space/plan_checks.py); its wiring is checked with the plan
        self.pre_pool = (nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
                         if s.pre_pool == "avg2" else None)
        # A real source is binarized here when the conv needs a binary operand.
        self.input_quantizer = (
            _binarizer(s.in_binarizer, s.c_in, s.in_slices, sign_grad, s.name)
            if s.src_bits == REAL_BITS and s.in_bits == 1 else None
        )
        conv_kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation, groups=s.groups,
                       padding_mode=s.padding_mode)
        if s.kind == "binconv":
            self.conv: MultiSliceConv2d = BinaryConv2d(
                s.in_slices * s.c_in, s.c_out, s.kernel, **conv_kw)
        else:
            self.conv = MultiSliceConv2d(s.in_slices * s.c_in, s.c_out, s.kernel, **conv_kw)
            nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        self.post_pool = nn.MaxPool2d(2, ceil_mode=True) if s.post_pool == "max2" else None
        self.bn = nn.BatchNorm2d(s.c_out) if s.norm else None
        self.join = s.join
        self.bn_mean = nn.BatchNorm2d(s.c_out) if s.join == "add_mean" else None
        self.act: nn.Module | None = (RPReLU(s.c_out) if s.act == "rprelu"
                                      else nn.PReLU(s.c_out) if s.act == "prelu" else None)
        self.output_quantizer = (_binarizer(s.out_binarizer, s.c_out, s.out_slices, sign_grad, s.name)
                                 if s.out_bits == 1 else None)
        self.logic = XnorJoin() if s.join == "xnor" else OrJoin() if s.join == "or" else None
        if self.logic is not None and self.bn is not None:
            nn.init.constant_(self.bn.bias, logic_join_bias if s.join == "xnor" else -logic_join_bias)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if self.pre_pool is not None:
            x = self.pre_pool(x.flatten(1, 2) if x.dim() == 5 else x)
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        z = self.conv(x)
        if self.post_pool is not None:
            z = self.post_pool(z)
        if self.bn is not None:
            z = self.bn(z)
        if self.join == "add":
            z = z + residual
        elif self.join == "add_mean":
            z = z + self.bn_mean(residual.mean(1))
        if self.act is not None:
            z = self.act(z)
        if self.output_quantizer is not None:
            z = self.output_quantizer(z)
        if self.logic is not None:
            z = self.logic(z, residual)
        return z


class LASLayer(nn.Module):
    """``las`` spec: LAS, then the multi-slice sign when the output is binary."""

    def __init__(self, spec: LayerSpec, sign_grad: str) -> None:
        super().__init__()
        self.las = LAS(spec.c_in, spec.kernel, spec.padding, spec.dilation)
        self.output_quantizer = (_binarizer(spec.out_binarizer, spec.c_out, spec.out_slices, sign_grad,
                                            spec.name) if spec.out_bits == 1 else None)

    def forward(self, x: Tensor) -> Tensor:
        z = self.las(x)
        return z if self.output_quantizer is None else self.output_quantizer(z)


class BinarizeLayer(nn.Module):
    """``binarize`` spec: BN -> multi-slice sign (plain or RSign)."""

    def __init__(self, spec: LayerSpec, sign_grad: str) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(spec.c_in) if spec.norm else None
        self.quantizer = _binarizer(spec.out_binarizer, spec.c_in, spec.out_slices, sign_grad,
                                    spec.name)

    def forward(self, x: Tensor) -> Tensor:
        return self.quantizer(x if self.bn is None else self.bn(x))


class PoolLayer(nn.Module):
    """``pool`` spec: max-pool (the ImageNet stem pool)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(spec.kernel, spec.stride, spec.padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x)


class HeadLayer(nn.Module):
    """``head`` spec: PReLU -> global average pool -> (N, C)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.act = nn.PReLU(spec.c_in) if spec.act == "prelu" else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:
            raise PlanError("the head expects a real (N, C, H, W) map, got a binary one")
        if self.act is not None:
            x = self.act(x)
        return x.mean((2, 3))


def _make_layer(spec: LayerSpec, sign_grad: str, logic_join_bias: float) -> nn.Module:
    kind = spec.kind
    if kind in ("conv", "binconv"):
        return ConvLayer(spec, sign_grad, logic_join_bias)
    if kind == "las":
        return LASLayer(spec, sign_grad)
    if kind == "binarize":
        return BinarizeLayer(spec, sign_grad)
    if kind == "pool":
        return PoolLayer(spec)
    if kind == "shuffle":
        return ConcatShuffle(groups=2)
    if kind == "head":
        return HeadLayer(spec)
    if kind == "fc":
        return nn.Linear(spec.c_in, spec.c_out)
    raise PlanError(
        f"layer {spec.name!r}: unknown kind {kind!r}; expected one of {list(LAYER_KINDS)}")


# --------------------------------------------------------------------------- network
class PlanNetwork(nn.Module):
    """The network of a :class:`~space.plan.Plan`: runs the layers in plan order.

    Each layer reads its taps from the outputs of earlier layers (``"input"`` is the image);
    outputs are dropped as soon as no later layer reads them.
    """

    def __init__(self, plan: Plan, *, logic_join_bias: float = 1.0) -> None:
        super().__init__()
        validate(plan)  # space/plan_checks.py; a plan from make_plan is already checked
        self.plan = plan
        self.layers = nn.ModuleDict(
            {_key(s.name): _make_layer(s, plan.sign_grad, logic_join_bias) for s in plan})
        last_use: dict[str, int] = {}
        for i, s in enumerate(plan):
            for tap in s.inputs:
                last_use[tap.src] = i
        # Per layer: (name, module key, taps, outputs whose last reader it is).
        self._program: list[tuple[str, str, tuple[Tap, ...], tuple[str, ...]]] = []
        for i, s in enumerate(plan):
            free = tuple(sorted({t.src for t in s.inputs if last_use[t.src] == i}))
            self._program.append((s.name, _key(s.name), s.inputs, free))
        self._output = plan.layers[-1].name
        self._names = [s.name for s in plan]

    def layer(self, name: str) -> nn.Module:
        """The module of plan layer ``name``."""
        try:
            return self.layers[_key(name)]
        except KeyError:
            raise KeyError(f"no layer {name!r} in this network; layers: {self._names}") from None

    def set_weight_temperature(self, t: float) -> None:
        """Set the temperature T of every progressive weight binarizer (training schedule);
        0 makes training use the hard sign, as evaluation always does."""
        for m in self.modules():
            if isinstance(m, ProgressiveWeightBinarizer):
                m.set_temperature(t)

    @torch.no_grad()
    def recalibrate_bn(self, batches: Iterable[Tensor]) -> None:
        """Recompute every BatchNorm's running statistics with the *evaluation* weights.

        Training runs with soft weights (T > 0) whose scale differs from the hard sign used
        in eval, and a short proxy training leaves running statistics that lag the weights;
        in a binary network the resulting flipped bits compound, and eval accuracy dropped to
        chance (0.08) where the recalibrated network reached 0.71-0.85 (synthetic task, 16
        steps). This runs the batches in train mode with hard weights (T = 0), averaging the
        statistics over all of them, then restores T and each BN's momentum and leaves the
        network in eval mode.
        """
        temps = [(m, m.temperature) for m in self.modules()
                 if isinstance(m, ProgressiveWeightBinarizer)]
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        self.set_weight_temperature(0.0)
        self.train()
        seen = 0
        try:
            with torch.no_grad():
                for x in batches:
                    self(x)
                    seen += 1
        finally:
            for m, t in temps:
                m.set_temperature(t)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.eval()
        if not seen:
            raise ValueError("recalibrate_bn needs at least one batch")

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``x`` ``(N, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.plan.task.in_channels:
            raise ValueError(
                f"expected images of shape (N, {self.plan.task.in_channels}, H, W), "
                f"got {tuple(x.shape)}")
        outputs: dict[str, Tensor] = {INPUT: x}
        for name, key, taps, free in self._program:
            args = []
            for tap in taps:
                y = outputs[tap.src]
                if tap.lo != 0 or tap.hi is not None:  # channel dim: 2 if binary, 1 if real
                    y = y[:, :, tap.lo:tap.hi] if y.dim() == 5 else y[:, tap.lo:tap.hi]
                args.append(y)
            out = self.layers[key](*args)
            for src in free:
                del outputs[src]
            outputs[name] = out
        return outputs[self._output]


def build(plan: Plan, *, logic_join_bias: float = 1.0) -> PlanNetwork:
    """Build the network of ``plan`` (train mode, fresh initialization).

    ``logic_join_bias``: initial BN bias magnitude of layers with an XNOR / OR join, which
    makes logic blocks start as identities (see :class:`ConvLayer`); 0 gives the plain init.
    """
    net = PlanNetwork(plan, logic_join_bias=logic_join_bias)
    logger.debug("built %d layers, %d parameters", len(plan),
                 sum(p.numel() for p in net.parameters()))
    return net


__all__ = ["PlanError", "PlanNetwork", "build", "ConvLayer", "LASLayer", "BinarizeLayer",
           "PoolLayer", "HeadLayer"]
