"""ONNX export of an :class:`~evaluators.deploy.inference.InferenceNetwork` (opset 17).

The graph is written node by node from the inference form's modules, one named group of nodes
per plan layer (``stage1.block0.conv1/sign``, ...), so the binary semantics stay visible:

- a binarizer is ``Unsqueeze -> Add(bias) -> GreaterOrEqual(0) -> Where(+1, -1)`` (ONNX ``Sign``
  maps 0 to 0; the quantizer maps it to +1), a folded BN -> sign is ``Mul(flip) ->
  GreaterOrEqual(T) -> Where``;
- a binary conv is ``Reshape`` (slices flattened) -> ``Pad`` (mode ``edge``) -> ``Conv`` with +-1
  weights, so its output is the integer sum of XNOR-popcount;
- XNOR / OR joins are ``Mul`` / ``Max`` of +-1 maps.

Why not ``torch.onnx.export``: its torch.export-based exporter took 4-9 s per small network on
our 2-core machines (the parity tests export 27), and the TorchScript-based one is deprecated
("will be removed") and writes hundreds of ``Shape`` / ``Constant`` nodes for the replicate pads.
Writing the graph directly takes milliseconds and keeps it readable; the parity tests check it
against the PyTorch network on every preset and on random genotypes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from boolnas.evaluators.deploy.inference import (
    Affine,
    BinarizeInference,
    ConvInference,
    FixedConv,
    HeadInference,
    InferenceNetwork,
    LASInference,
    ShuffleInference,
    SliceSign,
    ThresholdSign,
    decision_name,
)
from boolnas.space.files import write_atomic
from boolnas.space.layers import RPReLU
from boolnas.space.plan import INPUT

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "logits"

Shape = tuple[int, ...]  # static shape without the batch dimension


class _Graph:
    """Nodes, initializers and the static shape (batch excluded) of every value."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, Shape] = {}
        self._used: set[str] = set()
        self.signs: dict[str, str] = {}  # decision name (see decision_name) -> its +-1 value
        self.one = self.const("const/one", np.float32(1.0))
        self.minus_one = self.const("const/minus_one", np.float32(-1.0))
        self.zero = self.const("const/zero", np.float32(0.0))

    def _unique(self, name: str) -> str:
        out, i = name, 1
        while out in self._used:
            i += 1
            out = f"{name}_{i}"
        self._used.add(out)
        return out

    def const(self, name: str, value: Any, dtype: type = np.float32) -> str:
        if isinstance(value, Tensor):
            value = value.detach().cpu().numpy()
        name = self._unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.const(name, np.asarray(values, dtype=np.int64), np.int64)

    def op(self, op_type: str, inputs: Sequence[str], name: str, shape: Shape, **attrs: Any) -> str:
        out = self._unique(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        self.shapes[out] = shape
        return out


# --------------------------------------------------------------------------- module emitters
def _unsqueezed(g: _Graph, x: str, name: str) -> str:
    return g.op("Unsqueeze", [x, g.ints(f"{name}/axis1", [1])], f"{name}/unsqueeze", (1, *g.shapes[x]))


def _slice_sign(g: _Graph, m: SliceSign, x: str, name: str) -> str:
    k = m.bias.shape[1]
    c, h, w = g.shapes[x]
    t = g.op("Add", [_unsqueezed(g, x, name), g.const(f"{name}/slice_bias", m.bias[0])], f"{name}/shift",
             (k, c, h, w))
    ge = g.op("GreaterOrEqual", [t, g.zero], f"{name}/ge0", (k, c, h, w))
    g.signs[name] = g.op("Where", [ge, g.one, g.minus_one], f"{name}/sign", (k, c, h, w))
    return g.signs[name]


def _threshold_sign(g: _Graph, m: ThresholdSign, s: str, name: str) -> str:
    k = m.thresholds.shape[1]
    c, h, w = g.shapes[s]
    flipped = g.op("Mul", [_unsqueezed(g, s, name), g.const(f"{name}/flip", m.flip[0])], f"{name}/flipped",
                   (1, c, h, w))
    ge = g.op("GreaterOrEqual", [flipped, g.const(f"{name}/thresholds", m.thresholds[0])],
              f"{name}/ge_threshold", (k, c, h, w))
    g.signs[name] = g.op("Where", [ge, g.one, g.minus_one], f"{name}/sign", (k, c, h, w))
    return g.signs[name]


def _affine(g: _Graph, m: Affine, x: str, name: str) -> str:
    shape = g.shapes[x]
    y = g.op("Mul", [x, g.const(f"{name}/scale", m.scale[0])], f"{name}/scale", shape)
    return g.op("Add", [y, g.const(f"{name}/shift", m.shift[0])], f"{name}/shift", shape)


def _flat(g: _Graph, x: str, name: str) -> str:
    """A binary ``(k, C, H, W)`` map as ``(k*C, H, W)`` (slice-major)."""
    shape = g.shapes[x]
    if len(shape) != 4:
        return x
    k, c, h, w = shape
    return g.op("Reshape", [x, g.ints(f"{name}/flat_shape", [0, k * c, h, w])], f"{name}/flatten", (k * c, h, w))


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _fixed_conv(g: _Graph, m: FixedConv, x: str, name: str) -> str:
    x = _flat(g, x, name)
    c, h, w = g.shapes[x]
    if m.replicate:
        p = m.replicate
        h, w = h + 2 * p, w + 2 * p
        x = g.op("Pad", [x, g.ints(f"{name}/pads", [0, 0, p, p, 0, 0, p, p])], f"{name}/pad_edge", (c, h, w),
                 mode="edge")
    c_out, _, kh, kw = m.weight.shape
    inputs = [x, g.const(f"{name}/weight", m.weight)]
    if m.bias is not None:
        inputs.append(g.const(f"{name}/bias", m.bias))
    shape = (c_out, _conv_out(h, kh, m.stride, m.padding, m.dilation),
             _conv_out(w, kw, m.stride, m.padding, m.dilation))
    return g.op("Conv", inputs, f"{name}/conv", shape, kernel_shape=[kh, kw], strides=[m.stride] * 2,
                dilations=[m.dilation] * 2, group=m.groups, pads=[m.padding] * 4)


def _pool(g: _Graph, m: nn.Module, x: str, name: str) -> str:
    c, h, w = g.shapes[x]

    def single(v: Any) -> int:
        return int(v[0] if isinstance(v, (tuple, list)) else v)

    k, s, p = single(m.kernel_size), single(m.stride), single(m.padding)
    if isinstance(m, nn.MaxPool2d) and single(m.dilation) != 1:
        raise ValueError(f"layer {name!r}: dilated max-pool is not exported")
    ceil = bool(m.ceil_mode)
    out = []
    for size in (h, w):
        span = size + 2 * p - k
        n = (-(-span // s) if ceil else span // s) + 1
        if ceil and (n - 1) * s >= size + p:  # PyTorch drops a last window that starts in the padding
            n -= 1
        out.append(n)
    attrs: dict[str, Any] = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=int(ceil))
    if isinstance(m, nn.AvgPool2d):
        return g.op("AveragePool", [x], f"{name}/avgpool", (c, *out), count_include_pad=int(m.count_include_pad),
                    **attrs)
    return g.op("MaxPool", [x], f"{name}/maxpool", (c, *out), **attrs)


def _prelu(g: _Graph, m: nn.PReLU, x: str, name: str) -> str:
    slope = m.weight.detach().reshape(-1, 1, 1)
    return g.op("PRelu", [x, g.const(f"{name}/slope", slope)], f"{name}/prelu", g.shapes[x])


def _act(g: _Graph, m: nn.Module, x: str, name: str) -> str:
    if isinstance(m, RPReLU):
        shape = g.shapes[x]
        y = g.op("Sub", [x, g.const(f"{name}/shift_in", m.shift_in[0])], f"{name}/shift_in", shape)
        y = _prelu(g, m.prelu, y, name)
        return g.op("Add", [y, g.const(f"{name}/shift_out", m.shift_out[0])], f"{name}/shift_out", shape)
    if isinstance(m, nn.PReLU):
        return _prelu(g, m, x, name)
    raise ValueError(f"layer {name!r}: no ONNX form for activation {type(m).__name__}")


def _conv_layer(g: _Graph, m: ConvInference, args: list[str], name: str) -> str:
    x = args[0]
    residual = args[1] if len(args) > 1 else None
    if m.pre_pool is not None:
        x = _pool(g, m.pre_pool, _flat(g, x, f"{name}/pre_pool"), f"{name}/pre_pool")
    if m.in_sign is not None:
        x = _slice_sign(g, m.in_sign, x, decision_name(name, "in"))
    z = _fixed_conv(g, m.conv, x, name)
    if m.post_pool is not None:
        z = _pool(g, m.post_pool, z, f"{name}/post_pool")
    if m.norm is not None:
        z = _affine(g, m.norm, z, f"{name}/bn")
    if m.join == "add":
        assert residual is not None
        z = g.op("Add", [z, residual], f"{name}/add", g.shapes[z])
    elif m.join == "add_mean":
        assert residual is not None and m.norm_mean is not None
        mean = g.op("ReduceMean", [residual], f"{name}/slice_mean", g.shapes[residual][1:], axes=[1], keepdims=0)
        z = g.op("Add", [z, _affine(g, m.norm_mean, mean, f"{name}/bn_mean")], f"{name}/add_mean", g.shapes[z])
    if m.act is not None:
        z = _act(g, m.act, z, f"{name}/act")
    if isinstance(m.out_sign, ThresholdSign):
        z = _threshold_sign(g, m.out_sign, z, decision_name(name, "out"))
    elif isinstance(m.out_sign, SliceSign):
        z = _slice_sign(g, m.out_sign, z, decision_name(name, "out"))
    if m.join == "xnor":
        assert residual is not None
        z = g.op("Mul", [z, residual], f"{name}/xnor", g.shapes[z])
    elif m.join == "or":
        assert residual is not None
        z = g.op("Max", [z, residual], f"{name}/or", g.shapes[z])
    return z


def _shuffle(g: _Graph, m: ShuffleInference, a: str, b: str, name: str) -> str:
    d = m.dim - 1  # channel axis in the batch-less static shape
    sa, sb = g.shapes[a], g.shapes[b]
    c = sa[d] + sb[d]
    out_shape = (*sa[:d], c, *sa[d + 1:])
    if m.equal_halves:  # stack on a new axis after the channels, then merge: a0 b0 a1 b1 ...
        ua = g.op("Unsqueeze", [a, g.ints(f"{name}/axis_a", [m.dim + 1])], f"{name}/unsqueeze_a",
                  (*sa[:d + 1], 1, *sa[d + 1:]))
        ub = g.op("Unsqueeze", [b, g.ints(f"{name}/axis_b", [m.dim + 1])], f"{name}/unsqueeze_b",
                  (*sb[:d + 1], 1, *sb[d + 1:]))
        pairs = g.op("Concat", [ua, ub], f"{name}/stack", (*sa[:d + 1], 2, *sa[d + 1:]), axis=m.dim + 1)
        return g.op("Reshape", [pairs, g.ints(f"{name}/shape", [0, *out_shape])], f"{name}/interleave", out_shape)
    cat = g.op("Concat", [a, b], f"{name}/concat", out_shape, axis=m.dim)
    split = (*sa[:d], 2, c // 2, *sa[d + 1:])
    y = g.op("Reshape", [cat, g.ints(f"{name}/split_shape", [0, *split])], f"{name}/split", split)
    perm = list(range(len(split) + 1))
    perm[m.dim], perm[m.dim + 1] = perm[m.dim + 1], perm[m.dim]
    swapped = (*sa[:d], c // 2, 2, *sa[d + 1:])
    y = g.op("Transpose", [y], f"{name}/transpose", swapped, perm=perm)
    return g.op("Reshape", [y, g.ints(f"{name}/shape", [0, *out_shape])], f"{name}/merge", out_shape)


def _layer(g: _Graph, m: nn.Module, args: list[str], name: str) -> str:
    if isinstance(m, ConvInference):
        return _conv_layer(g, m, args, name)
    if isinstance(m, LASInference):
        x = args[0]
        a = _affine(g, m.bn_a, x, f"{name}/bn_a")
        b = _fixed_conv(g, m.depthwise, _affine(g, m.bn_b, x, f"{name}/bn_b"), f"{name}/depthwise")
        z = g.op("Add", [a, b], f"{name}/shift", g.shapes[a])
        return z if m.out_sign is None else _slice_sign(g, m.out_sign, z, decision_name(name, "out"))
    if isinstance(m, BinarizeInference):
        x = args[0] if m.norm is None else _affine(g, m.norm, args[0], f"{name}/bn")
        return _slice_sign(g, m.sign, x, decision_name(name, "out"))
    if isinstance(m, nn.MaxPool2d):
        return _pool(g, m, args[0], name)
    if isinstance(m, ShuffleInference):
        return _shuffle(g, m, args[0], args[1], name)
    if isinstance(m, HeadInference):
        x = args[0] if m.act is None else _act(g, m.act, args[0], f"{name}/act")
        return g.op("ReduceMean", [x], f"{name}/global_pool", g.shapes[x][:1], axes=[2, 3], keepdims=0)
    if isinstance(m, nn.Linear):
        inputs = [args[0], g.const(f"{name}/weight", m.weight)]
        if m.bias is not None:
            inputs.append(g.const(f"{name}/bias", m.bias))
        return g.op("Gemm", inputs, f"{name}/gemm", (m.out_features,), transB=1)
    raise ValueError(f"layer {name!r}: no ONNX form for {type(m).__name__}")


# --------------------------------------------------------------------------- the model
def to_onnx(net: InferenceNetwork, metadata: Mapping[str, Any] | None = None, *,
            expose_signs: bool = False) -> onnx.ModelProto:
    """The ONNX model of ``net``: input ``images`` ``(batch, C, H, W)``, output ``logits``
    ``(batch, classes)``. ``expose_signs``: every binarizer's +-1 output becomes an output too,
    named by :func:`decision_name` (to locate where two runtimes' bits part, see
    :mod:`evaluators.deploy.parity`). ``metadata`` values are stored as JSON strings."""
    plan = net.plan
    t = plan.task
    g = _Graph()
    values: dict[str, str] = {INPUT: INPUT_NAME}
    g.shapes[INPUT_NAME] = (t.in_channels, t.input_size, t.input_size)
    for name, key, taps, _free in net.program:
        args = []
        for i, tap in enumerate(taps):
            v = values[tap.src]
            if tap.lo != 0 or tap.hi is not None:
                shape = g.shapes[v]
                axis = 2 if len(shape) == 4 else 1
                hi = shape[axis - 1] if tap.hi is None else tap.hi
                sliced = (*shape[:axis - 1], hi - tap.lo, *shape[axis:])
                v = g.op("Slice", [v, g.ints(f"{name}/tap{i}_start", [tap.lo]), g.ints(f"{name}/tap{i}_end", [hi]),
                                   g.ints(f"{name}/tap{i}_axis", [axis])], f"{name}/tap{i}", sliced)
            args.append(v)
        out = _layer(g, net.layers[key], args, name)
        values[name] = g.op("Identity", [out], name, g.shapes[out])
    logits = g.op("Identity", [values[plan.layers[-1].name]], OUTPUT_NAME, (t.num_classes,))
    outputs = [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["batch", t.num_classes])]
    if expose_signs:
        for decision, value in g.signs.items():
            exposed = g.op("Identity", [value], decision, g.shapes[value])
            outputs.append(helper.make_tensor_value_info(exposed, TensorProto.FLOAT, ["batch", *g.shapes[value]]))
    graph = helper.make_graph(
        g.nodes, "boolnas",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       ["batch", t.in_channels, t.input_size, t.input_size])],
        outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="boolnas")
    model.ir_version = min(model.ir_version, 8)  # opset 17 runtimes read IR version 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` to ``path`` atomically."""
    data = model.SerializeToString()
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def onnx_session(source: str | Path | bytes | onnx.ModelProto, threads: int = 1) -> Any:
    """An onnxruntime CPU session for a model (a path, the file's bytes or a ModelProto)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if isinstance(source, onnx.ModelProto):
        source = source.SerializeToString()
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                providers=["CPUExecutionProvider"])


def run_session(session: Any, images: np.ndarray) -> dict[str, np.ndarray]:
    """The session's outputs by name for ``images`` (float32 NCHW)."""
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)})
    return dict(zip(names, values, strict=True))


def run_onnx(source: str | Path | bytes | onnx.ModelProto, images: np.ndarray,
             threads: int = 1) -> dict[str, np.ndarray]:
    """Run a model with onnxruntime on the CPU: its outputs by name for ``images`` (float32 NCHW)."""
    return run_session(onnx_session(source, threads), images)
