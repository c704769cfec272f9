"""Plan: the ordered layer specs of one genotype on one task.

The plan is the single source of truth shared by the network builder (space/builder.py) and
the energy model (evaluators/energy). Each :class:`LayerSpec` is one module of the built network
whose output shape is ``spec.out_shape`` (batch dimension excluded). Layers read the outputs of
earlier layers through :class:`Tap` s (a channel range of a named producer), so the plan is a small
DAG: main input first, then the residual of a join, if any. :func:`make_plan` returns a checked
plan; space/plan_checks.py holds the checks, which the builder and the energy model also apply
to any plan made otherwise.

Conventions
-----------
- A *binary* map has ``bits == 1`` and ``slices == k`` and is shaped ``(k, C, H, W)``; a *real*
  map has ``bits == 32``, ``slices == 1`` and is shaped ``(C, H, W)``.
- ``src_bits`` / ``src_slices`` describe the map a layer reads from memory; ``in_bits`` /
  ``in_slices`` the operand that reaches its convolution. A Bi-Real conv reads a 32-bit map
  (``src_bits=32``) and binarizes it on the fly (``in_bits=1``).
- ``groups`` counts over the flattened ``in_slices * c_in`` operand channels, so a multi-slice
  conv has ``groups == in_slices`` and the same MACs as a single-slice one.
- MACs of layers with weights are BOPs when both ``w_bits`` and ``in_bits`` are 1, else FLOPs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from boolnas.space.genotype import BASE_WIDTHS, NUM_STAGES, Genotype
from boolnas.space.plan_checks import INPUT, LAYER_KINDS, REAL_BITS, validate  # noqa: F401  (LAYER_KINDS: re-exported)
from boolnas.space.task import Task

JOINS = ("none", "xnor", "or", "add", "add_mean")


class Tap(NamedTuple):
    """Channels ``lo:hi`` of the output of layer ``src`` (``hi=None``: up to the end)."""

    src: str
    lo: int = 0
    hi: int | None = None


class LayerSpec(NamedTuple):
    """One layer of a plan (immutable; a NamedTuple because planning must be fast).

    Processing order inside a layer::

        pre_pool -> binarize operand (if src real and in_bits == 1) -> conv -> post_pool
        -> BN (norm) -> add / add_mean join -> act -> binarize output (if out_bits == 1)
        -> xnor / or join

    ``pool``, ``shuffle``, ``head`` and ``fc`` layers use the fields that apply to them.
    """

    name: str
    kind: str
    stage: int  # 0 stem, 1..4 stages, 5 head
    block: int  # block index inside the stage, -1 outside blocks
    inputs: tuple[Tap, ...]
    c_in: int  # channels per slice of the operand
    c_out: int
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    padding_mode: str = "zeros"  # binary convs pad with 'replicate' so padding stays +-1
    src_bits: int = REAL_BITS
    src_slices: int = 1
    in_bits: int = REAL_BITS
    in_slices: int = 1
    w_bits: int = 0  # 0: the layer has no weights
    out_bits: int = REAL_BITS
    out_slices: int = 1
    pre_pool: str = "none"  # 'avg2'
    post_pool: str = "none"  # 'max2'
    norm: bool = False
    join: str = "none"
    act: str = "none"  # 'prelu' | 'rprelu'
    in_binarizer: str = "sign"  # binarizes a real source into the operand: 'sign' | 'rsign' (learnable thresholds)
    out_binarizer: str = "sign"  # binarizes the output when out_bits == 1
    macs: int = 0
    params: int = 0  # weights (binary when w_bits == 1)
    aux_params: int = 0  # real per-channel parameters: BN affine, biases, thresholds, PReLU
    role: str = ""  # human label: 'stem', 'conv1', 'conv2', 'downsample', ...

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.kind in ("head", "fc"):
            return (self.c_out,)
        if self.out_bits == 1:
            return (self.out_slices, self.c_out, self.h_out, self.w_out)
        return (self.c_out, self.h_out, self.w_out)

    @property
    def is_binary_conv(self) -> bool:
        return self.w_bits == 1 and self.in_bits == 1

    @property
    def bops(self) -> int:
        return self.macs if self.is_binary_conv else 0

    @property
    def flops(self) -> int:
        return 0 if self.is_binary_conv else self.macs

    @property
    def out_elements(self) -> int:
        """Values in the output map (slices counted), one image."""
        n = 1
        for d in self.out_shape:
            n *= d
        return n

    @property
    def out_bits_total(self) -> int:
        return self.out_elements * self.out_bits


@dataclass(frozen=True)
class Plan:
    """The layers of ``genotype`` instantiated for ``task``."""

    genotype: Genotype
    task: Task
    layers: tuple[LayerSpec, ...]
    widths: tuple[int, ...]
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({layer.name: i for i, layer in enumerate(self.layers)})

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, name: str) -> LayerSpec:
        return self.layers[self._index[name]]

    @property
    def sign_grad(self) -> str:
        return self.genotype.sign_grad

    def totals(self) -> dict[str, int | float]:
        """Operation and parameter counts of one inference (one image).

        ``ops = flops + bops / 64`` (the BNN literature's convention); ``size_bits`` counts
        binary weights at 1 bit and every real parameter at 32 bits.
        """
        bops = sum(layer.bops for layer in self.layers)
        flops = sum(layer.flops for layer in self.layers)
        params_binary = sum(layer.params for layer in self.layers if layer.w_bits == 1)
        params_real = sum(
            (layer.params if layer.w_bits > 1 else 0) + layer.aux_params for layer in self.layers
        )
        return {
            "bops": bops,
            "flops": flops,
            "ops": flops + bops / 64,
            "params_binary": params_binary,
            "params_real": params_real,
            "size_bits": params_binary + REAL_BITS * params_real,
        }

    def describe(self) -> str:
        """A fixed-width table of the layers and the totals, for terminals and logs."""
        head = f"{'layer':<24}{'kind':<9}{'in':>16}{'out':>18} {'k':>2} {'s':>2} {'g':>3} {'W/A/F':>9}{'MACs':>13}"
        lines = [head, "-" * len(head)]
        for s in self.layers:
            src = f"{s.src_slices}x{s.c_in}x{s.h_in}x{s.w_in}" if s.src_bits == 1 else f"{s.c_in}x{s.h_in}x{s.w_in}"
            out = "x".join(str(d) for d in s.out_shape)
            wbits = s.w_bits if s.w_bits else "-"
            bits = f"{wbits}/{s.in_bits}/{s.out_bits * s.out_slices}"
            lines.append(
                f"{s.name:<24}{s.kind:<9}{src:>16}{out:>18} {s.kernel:>2} {s.stride:>2} {s.groups:>3} "
                f"{bits:>9}{s.macs:>13,}"
            )
        t = self.totals()
        lines.append("-" * len(head))
        lines.append(
            f"BOPs {t['bops']:.4g}  FLOPs {t['flops']:.4g}  OPs {t['ops']:.4g}  "
            f"params binary {t['params_binary']:,} real {t['params_real']:,}  size {t['size_bits'] / 8 / 2**20:.2f} MiB"
        )
        return "\n".join(lines)


# --------------------------------------------------------------------------- planning
class _Map(NamedTuple):
    """A feature map flowing between layers: where it comes from and what it holds."""

    tap: Tap
    bits: int
    slices: int
    channels: int
    h: int
    w: int

    @property
    def binary(self) -> bool:
        return self.bits == 1


class _Binarization(NamedTuple):
    """How a convolution's operand and output are binarized.

    A binary source is used as it is (its own slice count); a real source is binarized into
    ``k`` slices when ``binarize_input``; a binary output (``out_binary``) has ``k`` slices.
    ``in_binarizer`` defaults to ``out_binarizer`` (a stage uses one kind of sign).
    """

    k: int
    binarize_input: bool
    out_binary: bool
    out_binarizer: str = "sign"  # 'sign' | 'rsign' (learnable thresholds)
    in_binarizer: str | None = None


REAL = _Binarization(k=1, binarize_input=False, out_binary=False)  # a real conv: real operand and output


def round_channels(value: float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``): keeps every k in {1,2,4,8} legal."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


def stage_widths(genotype: Genotype, task: Task) -> tuple[int, ...]:
    scale = genotype.width_mult * task.width_mult
    return tuple(round_channels(base * scale) for base in BASE_WIDTHS)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pool2(size: int) -> int:
    return -(-size // 2)  # 2x2 pools run with ceil_mode, matching a stride-2 conv's output size


class _Planner:
    def __init__(self, genotype: Genotype, task: Task) -> None:
        self.g = genotype
        self.task = task
        self.widths = stage_widths(genotype, task)
        self.layers: list[LayerSpec] = []

    # ------------------------------------------------------------------ helpers
    def add(self, spec: LayerSpec) -> _Map:
        self.layers.append(spec)
        slices = spec.out_slices if spec.out_bits == 1 else 1
        return _Map(Tap(spec.name), spec.out_bits, slices, spec.c_out, spec.h_out, spec.w_out)

    def conv(
        self,
        name: str,
        src: _Map,
        c_out: int,
        *,
        stage: int,
        block: int,
        role: str,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        binary_weights: bool,
        grouped: bool,
        binarization: _Binarization,
        join: str = "none",
        residual: _Map | None = None,
        act: str = "none",
        pre_pool: str = "none",
        post_pool: str = "none",
    ) -> _Map:
        """Add one convolution layer reading ``src``; see LayerSpec for the processing order.

        ``grouped`` makes a multi-slice conv (groups = operand slices), otherwise the slices
        are flattened into one group. ``binarization`` says how the operand and the output are
        binarized; ``join`` (one of JOINS) joins the map ``residual`` (None with 'none').
        """
        bz = binarization
        k, binarize_input, out_binary = bz.k, bz.binarize_input, bz.out_binary
        out_binarizer = bz.out_binarizer
        in_binarizer = bz.in_binarizer or out_binarizer
        if src.binary:
            in_bits, in_slices = 1, src.slices
        elif binarize_input:
            in_bits, in_slices = 1, k
        else:
            in_bits, in_slices = REAL_BITS, 1
        if pre_pool != "none":  # pooling ±1 values makes them real
            in_bits = REAL_BITS if not binarize_input else in_bits
        padding = dilation * (kernel // 2)
        h_in, w_in = (_pool2(src.h), _pool2(src.w)) if pre_pool != "none" else (src.h, src.w)
        h_conv = _conv_out(h_in, kernel, stride, padding, dilation)
        w_conv = _conv_out(w_in, kernel, stride, padding, dilation)
        h_out, w_out = (_pool2(h_conv), _pool2(w_conv)) if post_pool != "none" else (h_conv, w_conv)
        groups = in_slices if grouped else 1
        flat_in = in_slices * src.channels
        weights = kernel * kernel * (flat_in // groups) * c_out
        out_slices = k if out_binary else 1
        aux = 2 * c_out  # BN affine
        if join == "add_mean":
            aux += 2 * c_out  # BN of the mean-over-slices branch
        if act == "rprelu":
            aux += 3 * c_out  # shift before, slope, shift after
        if out_binarizer == "rsign" and out_binary:
            aux += c_out  # one threshold per output channel
        if in_binarizer == "rsign" and binarize_input and not src.binary:
            aux += src.channels
        inputs = (src.tap,) if residual is None else (src.tap, residual.tap)
        return self.add(
            LayerSpec(
                name=name,
                kind="binconv" if binary_weights else "conv",
                stage=stage,
                block=block,
                inputs=inputs,
                c_in=src.channels,
                c_out=c_out,
                h_in=src.h,
                w_in=src.w,
                h_out=h_out,
                w_out=w_out,
                kernel=kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                padding_mode="replicate" if binary_weights and in_bits == 1 else "zeros",
                src_bits=src.bits,
                src_slices=src.slices,
                in_bits=in_bits,
                in_slices=in_slices,
                w_bits=1 if binary_weights else REAL_BITS,
                out_bits=1 if out_binary else REAL_BITS,
                out_slices=out_slices,
                pre_pool=pre_pool,
                post_pool=post_pool,
                norm=True,
                join=join,
                act=act,
                in_binarizer=in_binarizer if (binarize_input and not src.binary) else "sign",
                out_binarizer=out_binarizer if out_binary else "sign",
                macs=h_conv * w_conv * kernel * kernel * (flat_in // groups) * c_out,
                params=weights,
                aux_params=aux,
                role=role,
            )
        )

    # ------------------------------------------------------------------ stem
    def stem(self) -> _Map:
        t, c = self.task, self.widths[0]
        image = _Map(Tap(INPUT), REAL_BITS, 1, t.in_channels, t.input_size, t.input_size)
        if t.stem == "imagenet":
            x = self.conv("stem.conv", image, c, stage=0, block=-1, role="stem", kernel=7, stride=2,
                          binary_weights=False, grouped=False, binarization=REAL)
            h = _conv_out(x.h, 3, 2, 1)
            w = _conv_out(x.w, 3, 2, 1)
            x = self.add(LayerSpec(
                name="stem.pool", kind="pool", stage=0, block=-1, inputs=(x.tap,), c_in=c, c_out=c,
                h_in=x.h, w_in=x.w, h_out=h, w_out=w, kernel=3, stride=2, padding=1, role="stem pool",
            ))
        else:
            x = self.conv("stem.conv", image, c, stage=0, block=-1, role="stem", kernel=3, stride=1,
                          binary_weights=False, grouped=False, binarization=REAL)
        return self.stem_binarization(x)

    def stem_binarization(self, x: _Map) -> _Map:
        """How the stem's real output enters stage 1.

        Binary stage 1: BN -> multi-slice sign (``plain``), the same with learnable thresholds
        (``rsign``), or LAS -> multi-slice sign (``las``). A 32-bit stage 1 keeps the real map:
        ``las`` still adds its learned shift (a real output), ``rsign`` makes stage 1's first
        conv binarize with learnable thresholds, ``plain`` adds nothing.
        """
        g, k = self.g, self.g.slices[0]
        binary = g.shortcut[0] == "binary"
        if g.stem == "las":
            c = x.channels
            return self.add(LayerSpec(
                name="stem.las", kind="las", stage=0, block=-1, inputs=(x.tap,), c_in=c, c_out=c,
                h_in=x.h, w_in=x.w, h_out=x.h, w_out=x.w, kernel=3, padding=1, groups=c,
                w_bits=REAL_BITS, out_bits=1 if binary else REAL_BITS, out_slices=k if binary else 1,
                norm=True, macs=x.h * x.w * 9 * c, params=9 * c, aux_params=3 * 2 * c, role="LAS",
            ))
        if not binary:
            return x
        c = x.channels
        return self.add(LayerSpec(
            name="stem.binarize", kind="binarize", stage=0, block=-1, inputs=(x.tap,), c_in=c, c_out=c,
            h_in=x.h, w_in=x.w, h_out=x.h, w_out=x.w, out_bits=1, out_slices=k, norm=True,
            out_binarizer=g.stem if g.stem == "rsign" else "sign",
            aux_params=2 * c + (c if g.stem == "rsign" else 0), role="stem binarization",
        ))

    # ------------------------------------------------------------------ stages
    def stage(self, s: int, x: _Map) -> _Map:
        for b in range(self.g.blocks[s]):
            x = self.block(s, b, x)
        return x

    def block(self, s: int, b: int, x: _Map) -> _Map:
        """One basic block: two 3x3 convs with the stage's joins, plus the projection / reuse."""
        g = self.g
        c, k = self.widths[s], g.slices[s]
        binary = g.shortcut[s] == "binary"
        reuse = g.feature_reuse[s]
        rprelu = g.extras[s] == "rprelu"
        binarizer = "rsign" if rprelu else "sign"
        act = "rprelu" if rprelu else "none"
        dilated = g.dilated_last and s == NUM_STAGES - 1
        stride = 1 if s == 0 or dilated or b > 0 else 2
        dilation = 2 if dilated and b > 0 else 1
        prefix = f"stage{s + 1}.block{b}"
        last_in_net = s == NUM_STAGES - 1 and b == g.blocks[s] - 1
        if b == 0:
            main = x
            # Every stage transition has a projection branch (also a dilated stage 4 whose
            # stored width happens to match); the stem already emits stage 1's format.
            r = self.downsample(f"{prefix}.down", x, c, k, s, binary, 1 if dilated else 2, binarizer) if s else x
            passthrough = r
        elif reuse:
            half = x.channels // 2
            main = r = x._replace(tap=Tap(x.tap.src, 0, half), channels=half)
            passthrough = x._replace(tap=Tap(x.tap.src, half, x.channels), channels=x.channels - half)
        else:
            main = r = passthrough = x
        # Stage 1's first conv takes the stem's learnable thresholds in a 32-bit design.
        first_binarizer = "rsign" if (s == 0 and b == 0 and g.stem == "rsign" and not binary) else binarizer
        stage = s + 1

        # How the block's convs binarize: binarized operands of k slices, binary or real outputs.
        binary_out = _Binarization(k, binarize_input=True, out_binary=True, out_binarizer=binarizer)
        real_out = _Binarization(k, binarize_input=True, out_binary=False, out_binarizer=binarizer)

        def conv1(binarization: _Binarization, join: str, residual: _Map | None) -> _Map:
            if first_binarizer != binarizer:
                binarization = binarization._replace(in_binarizer=first_binarizer)
            return self.conv(f"{prefix}.conv1", main, c, stage=stage, block=b, role="conv1", kernel=3, stride=stride,
                             dilation=dilation, binary_weights=True, grouped=True, binarization=binarization,
                             join=join, residual=residual, act=act)

        def conv2(h: _Map, binarization: _Binarization, join: str, residual: _Map) -> _Map:
            return self.conv(f"{prefix}.conv2", h, c, stage=stage, block=b, role="conv2", kernel=3, stride=1,
                             dilation=dilation, binary_weights=True, grouped=True, binarization=binarization,
                             join=join, residual=residual, act=act)

        if binary:
            h = conv1(binary_out, join="xnor", residual=r)
            # BoolNet's exit is a 32-bit sum of the last conv and the slice-mean of h.
            if last_in_net:
                out = conv2(h, real_out, join="add_mean", residual=h)
            else:
                out = conv2(h, binary_out, join="or", residual=r)
        elif g.placement[s] == "per_conv":
            h = conv1(real_out, join="add", residual=r)
            out = conv2(h, real_out, join="add", residual=h)
        else:  # per_block: one 32-bit shortcut around the pair; h is binarized once, stored as k bits
            h = conv1(binary_out, join="none", residual=None)
            out = conv2(h, real_out, join="add", residual=r)
        if reuse and not last_in_net:
            # The last block drops the pass-through half: the head sees c channels, as in
            # the released BoolNet (its FC is 512 -> classes).
            out = self.shuffle(f"{prefix}.shuffle", out, passthrough, stage, b)
        return out

    def downsample(self, name: str, x: _Map, c: int, k: int, s: int, binary: bool, stride: int,
                   binarizer: str) -> _Map:
        """The shortcut projection of a stage's first block; its output has the stage's format.

        ``binary_maxpool``: binary 1x1 conv over all slices of the input (groups 1) at input
        resolution -> 2x2 max-pool -> BN. ``fp32_avgpool``: 2x2 avg-pool -> real 1x1 conv -> BN.
        ``strided``: a 1x1 conv with the stride, binary in binary stages, real in 32-bit ones.
        In a dilated stage (stride 1) the pooling is dropped. A binary stage then binarizes the
        result with its own k; a 32-bit stage keeps it real.
        """
        variant = self.g.downsample[s - 1]
        pooled = stride == 2
        site = dict(stage=s + 1, block=0, role="downsample")
        if variant == "binary_maxpool":
            return self.conv(name, x, c, **site, kernel=1, binary_weights=True, grouped=False,
                             binarization=_Binarization(k, binarize_input=True, out_binary=binary,
                                                        out_binarizer=binarizer),
                             post_pool="max2" if pooled else "none")
        # Real projections read a multi-slice map slice by slice (groups = k), as the released
        # BoolNet code's real variant does, so k does not multiply their real MACs.
        if variant == "fp32_avgpool":
            return self.conv(name, x, c, **site, kernel=1, binary_weights=False, grouped=True,
                             binarization=_Binarization(k, binarize_input=False, out_binary=binary,
                                                        out_binarizer=binarizer),
                             pre_pool="avg2" if pooled else "none")
        # strided: binary in binary stages (one group over all slices), real in 32-bit ones
        return self.conv(name, x, c, **site, kernel=1, stride=stride, binary_weights=binary, grouped=not binary,
                         binarization=_Binarization(k, binarize_input=binary, out_binary=binary,
                                                    out_binarizer=binarizer))

    def shuffle(self, name: str, a: _Map, b: _Map, stage: int, block: int) -> _Map:
        """Concatenate the block output with the pass-through half and interleave (2 groups)."""
        return self.add(LayerSpec(
            name=name, kind="shuffle", stage=stage, block=block, inputs=(a.tap, b.tap),
            c_in=a.channels + b.channels, c_out=a.channels + b.channels, h_in=a.h, w_in=a.w,
            h_out=a.h, w_out=a.w, src_bits=a.bits, src_slices=a.slices, in_bits=a.bits,
            in_slices=a.slices, out_bits=a.bits, out_slices=a.slices, role="feature reuse",
        ))

    # ------------------------------------------------------------------ head
    def head(self, x: _Map) -> None:
        c, classes = x.channels, self.task.num_classes
        pooled = self.add(LayerSpec(
            name="head.pool", kind="head", stage=NUM_STAGES + 1, block=-1, inputs=(x.tap,), c_in=c,
            c_out=c, h_in=x.h, w_in=x.w, h_out=1, w_out=1, act="prelu", aux_params=c,
            role="PReLU + global average pool",
        ))
        self.add(LayerSpec(
            name="head.fc", kind="fc", stage=NUM_STAGES + 1, block=-1, inputs=(pooled.tap,), c_in=c,
            c_out=classes, h_in=1, w_in=1, h_out=1, w_out=1, w_bits=REAL_BITS, macs=c * classes,
            params=c * classes, aux_params=classes, role="classifier",
        ))


def make_plan(genotype: Genotype, task: Task) -> Plan:
    """Instantiate ``genotype`` for ``task``: the ordered layer specs of the network, validated
    (space/plan_checks.py; raises PlanError if the planner ever produced a broken plan)."""
    planner = _Planner(genotype, task)
    x = planner.stem()
    for s in range(NUM_STAGES):
        x = planner.stage(s, x)
    planner.head(x)

    return validate(Plan(genotype=genotype, task=task, layers=tuple(planner.layers), widths=planner.widths))


def plan_summary(plan: Plan) -> dict[str, Any]:
    """Totals plus a few structural facts, JSON-friendly."""
    return {**plan.totals(), "layers": len(plan.layers), "widths": list(plan.widths)}
