"""Plan validation: the invariants every consumer of a :class:`~space.plan.Plan` relies on.

Torch-free, so the network builder (space/builder.py) and the energy model
(evaluators/energy) check plans the same way. :func:`make_plan` validates what it returns;
:func:`validate` is also what ``build`` and ``estimate`` call, so a plan assembled by hand
(or edited with ``_replace``) is refused with the same :class:`PlanError` by each of them.
A plan is checked once: the result is remembered on the plan object.

What is checked, in this order (the first failure is raised):

1. the wiring of the plan (:func:`check_inputs`): layer names are unique, every layer has
   inputs, every tap reads an earlier layer (or the image) inside its channels, and the shape
   it reads is the one the spec declares (main input, the residual of a join, the two inputs
   of a shuffle);
2. each layer's own fields, in plan order (:func:`check_layer`): known kind, pools, joins,
   activations and binarizers; a binary operand is really +-1 (no pooled binary source
   passed on as 1-bit, replicate padding); the operand's slices match its source; a
   ``binconv`` has binary weights; logic joins have binary outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: space/plan.py imports this module to validate what it plans
    from boolnas.space.plan import LayerSpec, Plan, Tap

# The plan's vocabulary, defined here (the checks need it) and used by space/plan.py.
REAL_BITS = 32
INPUT = "input"  # name of the image that feeds the first layer
LAYER_KINDS = ("conv", "binconv", "las", "binarize", "pool", "shuffle", "head", "fc")

BINARIZERS = ("sign", "rsign")
PRE_POOLS = ("none", "avg2")
POST_POOLS = ("none", "max2")
CONV_JOINS = ("none", "add", "add_mean", "xnor", "or")
CONV_ACTS = ("none", "rprelu", "prelu")

_CHECKED = "_checked"  # attribute set on a plan that passed validate()


class PlanError(ValueError):
    """A plan that cannot be built as written; the message names the layer and the field."""


def validate(plan: Plan) -> Plan:
    """``plan`` itself when its invariants hold (see the module docstring); raises PlanError otherwise."""
    if plan.__dict__.get(_CHECKED):
        return plan
    check_inputs(plan)
    for spec in plan.layers:
        kind = spec.kind
        if kind == "conv" or kind == "binconv":  # the common case first: validation runs in tight loops
            check_conv(spec)
        elif kind != "shuffle":
            check_layer(spec)
    object.__setattr__(plan, _CHECKED, True)  # a cache: the plan and its layers are immutable
    return plan


# --------------------------------------------------------------------------- per layer
def check_binarizer(kind: str, layer: str) -> None:
    if kind not in BINARIZERS:
        raise PlanError(f"layer {layer!r}: unknown binarizer {kind!r}; expected 'sign' or 'rsign'")


def check_layer(spec: LayerSpec) -> None:
    """The fields of one layer, alone (its wiring is :func:`check_inputs`'s)."""
    kind = spec.kind
    if kind in ("conv", "binconv"):
        check_conv(spec)
    elif kind == "las":
        if spec.out_bits == 1:
            check_binarizer(spec.out_binarizer, spec.name)
    elif kind == "binarize":
        check_binarizer(spec.out_binarizer, spec.name)
    elif kind not in LAYER_KINDS:
        raise PlanError(f"layer {spec.name!r}: unknown kind {kind!r}; expected one of {list(LAYER_KINDS)}")


def check_conv(s: LayerSpec) -> None:
    """A ``conv`` / ``binconv`` spec's fields (the processing order of LayerSpec)."""
    pre_pool, src_bits, in_bits = s.pre_pool, s.src_bits, s.in_bits
    if pre_pool not in PRE_POOLS:
        raise PlanError(f"layer {s.name!r}: unknown pre_pool {s.pre_pool!r}")
    if src_bits == 1 and pre_pool != "none" and in_bits == 1:
        raise PlanError(
            f"layer {s.name!r}: pooling a binary source gives real values, but in_bits == 1 "
            "and the source is not binarized again (src_bits == 1); set in_bits = 32"
        )
    if src_bits == REAL_BITS and in_bits == 1 and s.in_binarizer not in BINARIZERS:  # a real source binarized
        check_binarizer(s.in_binarizer, s.name)
    if src_bits == REAL_BITS and in_bits == REAL_BITS and s.in_slices != 1:
        raise PlanError(f"layer {s.name!r}: a real source with in_slices={s.in_slices} != 1")
    if src_bits == 1 and s.in_slices != s.src_slices:
        raise PlanError(
            f"layer {s.name!r}: binary source of {s.src_slices} slices used as an operand of "
            f"{s.in_slices} slices"
        )
    if s.kind == "binconv" and s.w_bits != 1:
        raise PlanError(f"layer {s.name!r}: kind 'binconv' with w_bits={s.w_bits}")
    if s.padding_mode == "zeros" and in_bits == 1 and s.padding > 0:
        raise PlanError(
            f"layer {s.name!r}: a binary operand zero-padded (padding={s.padding}) is not +-1; "
            "use padding_mode 'replicate'"
        )
    if s.post_pool not in POST_POOLS:
        raise PlanError(f"layer {s.name!r}: unknown post_pool {s.post_pool!r}")
    join, out_bits = s.join, s.out_bits
    if join not in CONV_JOINS:
        raise PlanError(f"layer {s.name!r}: unknown join {s.join!r}")
    if s.act not in CONV_ACTS:
        raise PlanError(f"layer {s.name!r}: unknown act {s.act!r}")
    if out_bits == 1 and s.out_binarizer not in BINARIZERS:
        check_binarizer(s.out_binarizer, s.name)
    if (join == "xnor" or join == "or") and out_bits != 1:
        raise PlanError(f"layer {s.name!r}: logic join {s.join!r} on a real output")


# --------------------------------------------------------------------------- wiring
def _tap_shape(tap: Tap, shapes: dict[str, tuple[int, ...]], reader: str) -> tuple[int, ...]:
    shape = shapes.get(tap.src)
    if shape is None:
        raise PlanError(f"layer {reader!r} reads {tap.src!r}, which is not an earlier layer")
    lo, hi = tap.lo, tap.hi
    if lo == 0 and hi is None:  # the whole map (the common case: planning runs in tight loops)
        return shape
    cdim = 1 if len(shape) == 4 else 0  # (k, C, H, W) or (C, H, W) or (C,)
    c = shape[cdim]
    if hi is None:
        hi = c
    if not 0 <= lo < hi <= c:
        raise PlanError(f"layer {reader!r}: tap {tap} outside the {c} channels of {tap.src!r}")
    return (*shape[:cdim], hi - lo, *shape[cdim + 1:])


def _residual_shape(s: LayerSpec, res: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape the join of conv ``s`` needs its residual to have (None: none fits)."""
    join = s.join
    if join == "add":
        return (s.c_out, s.h_out, s.w_out)
    if join == "add_mean":
        return (res[0], s.c_out, s.h_out, s.w_out) if len(res) == 4 else None
    return (s.out_slices, s.c_out, s.h_out, s.w_out)  # xnor / or


def check_inputs(plan: Plan) -> None:
    """Every layer's taps exist and carry what its spec says it reads (clear errors early)."""
    t = plan.task
    shapes: dict[str, tuple[int, ...]] = {INPUT: (t.in_channels, t.input_size, t.input_size)}
    for s in plan.layers:
        name = s.name
        kind = s.kind
        inputs = s.inputs
        if name in shapes:
            raise PlanError(f"layer {name!r}: the name is used twice (or is the image's, {INPUT!r})")
        if not inputs:
            raise PlanError(f"layer {name!r} has no inputs")
        tap = inputs[0]
        main = shapes.get(tap.src) if tap.lo == 0 and tap.hi is None else None
        if main is None:
            main = _tap_shape(tap, shapes, name)
        if kind == "conv" or kind == "binconv":
            expect = ((s.src_slices, s.c_in, s.h_in, s.w_in) if s.src_bits == 1
                      else (s.c_in, s.h_in, s.w_in))
            if main != expect:
                raise PlanError(f"layer {name!r}: main input {inputs[0]} has shape {main}, "
                                f"the spec says {expect} (src_bits={s.src_bits})")
            need_res = s.join != "none"
            if need_res != (len(inputs) == 2):
                raise PlanError(f"layer {name!r}: join {s.join!r} with {len(inputs)} inputs")
            if need_res and s.join in CONV_JOINS:  # an unknown join is check_conv's to report
                res = _tap_shape(inputs[1], shapes, name)
                expect_res = _residual_shape(s, res)
                if res != expect_res:
                    raise PlanError(f"layer {name!r}: residual {inputs[1]} has shape {res}, "
                                    f"join {s.join!r} needs {expect_res}")
        elif kind == "shuffle":
            if len(inputs) != 2:
                raise PlanError(f"layer {name!r}: shuffle needs 2 inputs, has {len(inputs)}")
            other = _tap_shape(inputs[1], shapes, name)
            cdim = 1 if len(main) == 4 else 0
            same_format = len(main) == len(other) and all(
                a == b for i, (a, b) in enumerate(zip(main, other, strict=True)) if i != cdim)
            if not same_format:
                raise PlanError(
                    f"layer {name!r}: shuffle inputs {main} and {other} differ in format")
        elif kind in ("las", "binarize", "pool", "head"):
            if main != (s.c_in, s.h_in, s.w_in):
                raise PlanError(f"layer {name!r}: input {inputs[0]} has shape {main}, "
                                f"the spec says {(s.c_in, s.h_in, s.w_in)}")
        elif kind == "fc" and main != (s.c_in,):
            raise PlanError(f"layer {name!r}: input has shape {main}, the spec says ({s.c_in},)")
        shapes[name] = s.out_shape


__all__ = ["PlanError", "validate", "check_inputs", "check_layer", "check_conv", "check_binarizer"]
