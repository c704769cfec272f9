"""The built-in energy model: pure arithmetic over a Plan and a HardwareProfile.

It follows the accelerator of the BoolNet paper (docs/bnn-background.md, section 4). Per layer:

Compute
    Every unit type a layer uses (binary conv array, real conv array, logic join, integer
    adder, sign units, BN, RPReLU) has ``A_u`` operations and ``P_u`` parallelism, so it is
    busy ``C_u = A_u / P_u`` cycles. The slowest unit sets the layer's cycles
    ``C = max_u C_u``; the others wait and burn static power meanwhile:
    ``E_u = e_u * ((1 - f) * C_u + f * C)`` with ``e_u`` the unit's energy per busy cycle
    (power / clock) and ``f`` the profile's static fraction.

SRAM (accesses x energy per access, accesses = bits needed / read width)
    - operand reads of a convolution: the array takes ``fm_lanes`` operand values per cycle and
      uses each for ``min(c_out / groups, P_out)`` output channels (``P_out`` = array columns),
      so it reads ``macs / reuse`` values, at the stored map's precision (a 32-bit map read by
      a Bi-Real conv costs 32 bits per value; 2x2 pre-pooling reads 4 values per operand).
      Streaming layers (binarize, LAS, pooling, head) read their input map once.
    - residual reads of a join: the residual map once, at its precision (also when it is the
      conv's own input, as the paper's per-block bit counts do: input + output + shortcut).
    - output writes: the output map once, at its precision.
    - weights: ``macs * weight_bits / weight_reuse`` (the paper's array fetches the weights of
      every cycle: reuse 1), plus the per-channel parameters once.
    The feature-map read width is ``fm_lanes * bits`` (64 bits for 1-bit maps, 2048 for 32-bit
    maps with 64 lanes); the access energy scales with the width (see the profile).

DRAM (bits / access width x energy per access)
    - every costed layer's weights and per-channel parameters, loaded once;
    - feature maps: a stored map larger than the feature-map buffer spills its excess (only
      the part that does not fit): the producer writes it out, every layer that reads it reads
      back its share once: a channel range reads its fraction, a strided 1x1 conv (no pooling)
      only the pixels it uses (1/stride^2: maps are stored pixel by pixel, all channels of a
      pixel in consecutive words, so skipped pixels are skipped bursts). Maps consumed only by a
      streaming layer (the stem's output feeding BN->sign or LAS) are never stored; the output
      of a block consumed only by its feature-reuse shuffle is written straight into the
      shuffled map.
    - shortcut spans: a join's residual map that an earlier layer of the same block already
      streamed in, with only 1-bit maps produced in between (a per-block fp32 shortcut around
      conv1 -> 1-bit h -> conv2, or the second logic join of a BaseNet / BoolNet block), is not
      read back from DRAM again. The layers of such a span run row-interleaved: conv2 starts
      as soon as conv1 has written the rows of h its 3x3 window needs, so the shortcut rows
      conv1 streamed in wait in a delay line of a few rows until the join adds them. This is
      cheap exactly when the maps in between are 1-bit (line buffers of a few rows of h cost
      1/32 of a 32-bit map's rows). Layer by layer, with any replacement policy (Belady's
      optimal one included), the 32-bit block input would cross the DRAM interface three
      times per block (read by conv1, read by the join, the output written); with the span it
      crosses twice, as a per-conv (Bi-Real) span's does per conv. Spans whose join reads a
      map no earlier layer of the block read (the projection's output in a stage's first
      block, every Bi-Real join) are unchanged.

Scope: the profile says whether the stem conv (+ its pool) and the head (pool + FC) are
costed; layers it leaves to the host are listed in ``EnergyReport.host_layers``.

Bit-widths come from the plan (``src_bits``, ``in_bits``, ``out_bits``, slices), so a mixed
design is costed stage by stage. Nothing here depends on a network's name.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

from boolnas.evaluators.energy.profile import UNIT_INDEX, UNIT_NAMES, HardwareProfile
from boolnas.evaluators.energy.report import EnergyReport
from boolnas.space.plan import INPUT, LayerSpec, Plan, Tap
from boolnas.space.plan_checks import validate

_BIN = UNIT_INDEX["binary_conv"]
_REAL = UNIT_INDEX["real_conv"]
_LOGIC = UNIT_INDEX["logic_join"]
_ADD = UNIT_INDEX["int_add"]
_SIGN16 = UNIT_INDEX["sign_folded"]
_SIGN32 = UNIT_INDEX["sign_real"]
_BN = UNIT_INDEX["batchnorm"]
_ACT = UNIT_INDEX["rprelu"]
_N_UNITS = len(UNIT_NAMES)

CONV_KINDS = frozenset(("conv", "binconv", "fc"))
# Layers that consume their input as a stream through a line buffer: a map read only by one
# of them never has to be stored whole.
STREAMING_KINDS = frozenset(("binarize", "las", "pool", "head"))

# How a layer's output map is kept (MapGraph.stored).
STREAMED = 0  # not stored: streamed into its only reader, or the network's output
STORED = 1  # stored in the feature-map buffer (its excess over the buffer spills to DRAM)
INTO_SHUFFLE = 2  # written straight into the map of the feature-reuse shuffle that is its only reader

_PJ_TO_UJ = 1e-6


class LayerRow(NamedTuple):
    """The cost of one layer as the model emits it: the fields of
    :class:`~evaluators.energy.report.LayerEnergy`, in its order (``report.ROW_FIELDS``; a test
    keeps the three in step); the report turns rows into LayerEnergy objects only when asked.

    :func:`estimate` makes rows with ``_new_row((...))`` from locals named like the fields, in
    order: a tuple.__new__ call (a NamedTuple built with keywords costs over ten times as much,
    and rows are made millions of times).
    """

    name: str
    kind: str
    stage: int
    cycles: float
    bound_by: str  # the unit type that sets the cycles, '-' for none
    compute_uJ: float
    sram_uJ: float
    dram_uJ: float
    sram_fm_read_bits: float  # operand reads plus the join's residual read
    sram_fm_write_bits: float
    sram_weight_bits: float
    dram_weight_bits: float
    dram_fm_bits: float  # input + residual read back + output spilled
    fm_live_bits: float
    sram_residual_bits: float
    dram_residual_bits: float
    dram_fm_write_bits: float


_new_row = partial(tuple.__new__, LayerRow)  # _new_row(values) -> LayerRow, at the cost of a tuple


class _Consts:
    """Per-profile constants, computed once per profile object (cached on it)."""

    __slots__ = (
        "inv_par",
        "dyn_pj",
        "stat_pj",
        "ppb_fm",
        "ppb_w",
        "ppb_dram",
        "buf_bits",
        "wbuf_bits",
        "p_out",
        "real_w_bits",
        "param_bits",
        "weight_reuse",
        "cost_stem",
        "cost_head",
        "_fm_pj_per_bit",
    )

    def __init__(self, p: HardwareProfile) -> None:
        f = p.static_fraction
        self.inv_par = tuple(1.0 / u.parallelism for u in p.units)
        self.dyn_pj = tuple(u.cycle_pj * (1.0 - f) for u in p.units)
        self.stat_pj = tuple(u.cycle_pj * f for u in p.units)
        self.ppb_fm = {1: p.fm_pj_per_bit(1), 32: p.fm_pj_per_bit(32)}
        self.ppb_w = p.weight_pj_per_bit
        self.ppb_dram = p.dram_pj_per_bit
        self.buf_bits = p.fm_buffer_bits
        self.wbuf_bits = p.weight_buffer_bits
        self.p_out = max(1.0, p.out_parallelism)
        self.real_w_bits = p.real_weight_bits
        self.param_bits = p.param_bits
        self.weight_reuse = p.weight_reuse
        self.cost_stem = p.cost_stem_conv
        self.cost_head = p.cost_head
        self._fm_pj_per_bit = p.fm_pj_per_bit

    def fm_ppb(self, bits: int) -> float:
        """SRAM energy per feature-map bit of a map of ``bits`` bits per value."""
        value = self.ppb_fm.get(bits)
        if value is None:
            value = self.ppb_fm[bits] = self._fm_pj_per_bit(bits)
        return value


def _consts(profile: HardwareProfile) -> _Consts:
    consts = profile.__dict__.get("_energy_consts")
    if consts is None:
        consts = _Consts(profile)
        object.__setattr__(profile, "_energy_consts", consts)  # a cache, not state
    return consts


# --------------------------------------------------------------------------- pass 1: the map graph
class MapGraph:
    """The feature maps of a plan (layer ``i`` produces map ``i``) and how they are kept.

    Lists indexed by layer: ``bits`` (the whole map, slices counted), ``bits_per_value`` and
    ``slices`` of the map; ``src0`` / ``src1`` the producers of the layer's main input and
    residual (-1: the image; ``src1`` -2: no second input); ``delayed``: a join whose residual
    comes from its shortcut span's delay line, not from memory (see the module docstring);
    ``stored``: STREAMED, STORED or INTO_SHUFFLE; ``delta``: changes of the live stored bits,
    applied before costing each layer (a stored map lives from its producer to its last reader).
    """

    __slots__ = ("bits", "bits_per_value", "slices", "src0", "src1", "delayed", "stored", "delta")

    def __init__(self, layers: tuple[LayerSpec, ...], index: dict[str, int]) -> None:
        n = len(layers)
        self.bits = [0.0] * n
        self.bits_per_value = [32] * n
        self.slices = [1] * n
        self.src0 = [-1] * n
        self.src1 = [-2] * n
        self.delayed = [False] * n
        readers, last_reader, main_of = self._readers(layers, index)
        self.stored, self.delta = self._storage(layers, readers, last_reader, main_of)

    def _readers(self, layers: tuple[LayerSpec, ...], index: dict[str, int]) -> tuple[list[int], ...]:
        """Fill the per-map lists; return, per map, how many distinct layers read it, the last
        of them, and the last layer that reads it as its main input."""
        map_bits, map_bpv, map_sl = self.bits, self.bits_per_value, self.slices
        src0, src1, delayed = self.src0, self.src1, self.delayed
        n = len(layers)
        n_readers = [0] * n
        last_reader = [-1] * n
        main_of = [-1] * n
        first_in_block: dict[tuple[int, int, int], int] = {}  # (map, stage, block) -> its first reader there
        for i, spec in enumerate(layers):
            ob = spec.out_bits
            sl = spec.out_slices if ob == 1 else 1
            kind = spec.kind
            ch = spec.c_out
            map_bits[i] = (
                (ch if kind == "head" or kind == "fc" else ch * spec.h_out * spec.w_out) * ob * sl
            )
            map_bpv[i] = ob
            map_sl[i] = sl
            inputs = spec.inputs
            src = inputs[0].src
            if src != INPUT:
                j = index[src]
                src0[i] = j
                n_readers[j] += 1
                last_reader[j] = main_of[j] = i
            if len(inputs) > 1:
                src = inputs[1].src
                if src != INPUT:
                    j = index[src]
                    src1[i] = j
                    if last_reader[j] != i:
                        n_readers[j] += 1
                        last_reader[j] = i
                else:
                    src1[i] = -1
            if spec.block >= 0:
                # Shortcut spans (see the module docstring): the join's residual was streamed in by an
                # earlier layer of the block and everything in between is 1-bit -> delay line.
                for j in (src0[i], src1[i]):
                    if j >= 0:
                        first_in_block.setdefault((j, spec.stage, spec.block), i)
                jr = src1[i]
                if jr >= 0 and spec.join != "none":
                    k = first_in_block[(jr, spec.stage, spec.block)]
                    delayed[i] = k < i and all(layers[m].out_bits == 1 for m in range(k, i))
        return n_readers, last_reader, main_of

    def _storage(self, layers: tuple[LayerSpec, ...], n_readers: list[int], last_reader: list[int],
                 main_of: list[int]) -> tuple[list[int], list[float]]:
        """How each map is kept, and the live-bits changes of the stored ones."""
        n = len(layers)
        map_bits = self.bits
        stored = [STORED] * n
        delta = [0.0] * (n + 1)
        for j in range(n):
            readers = n_readers[j]
            if not readers:
                stored[j] = STREAMED
                continue
            last = last_reader[j]
            if readers == 1:
                ck = layers[last].kind
                if ck in STREAMING_KINDS:
                    stored[j] = STREAMED
                    continue
                if ck == "shuffle" and main_of[j] == last:
                    stored[j] = INTO_SHUFFLE
            b = map_bits[j]
            # a shuffled map is made of maps that are live at the shuffle itself: count it after
            start = j + 1 if layers[j].kind == "shuffle" else j
            if start <= last:
                delta[start] += b
                delta[last + 1] -= b
        return stored, delta

    def spilled(self, j: int, buf: float) -> float:
        """Bits of map ``j`` that do not fit the feature-map buffer and live in DRAM (0: none)."""
        return self.bits[j] - buf if self.stored[j] == STORED and self.bits[j] > buf else 0.0


# --------------------------------------------------------------------------- pass 2: per layer
def _compute(spec: LayerSpec, binary_mac: bool, out_vals: int, out_sl: int, c: _Consts, unit_busy: list[float],
             unit_wait: list[float]) -> tuple[float, int, float]:
    """``(cycles, bound, pj)`` of a layer's compute: the slowest unit type it uses sets its
    cycles (``bound`` is that unit's index, -1 for none); every unit burns static power meanwhile
    (``pj``). Adds the units' busy and waiting cycles to ``unit_busy`` / ``unit_wait``."""
    # (unit, operations) of each unit type the layer uses, its main unit first
    kind = spec.kind
    macs = spec.macs
    ob = spec.out_bits
    join = spec.join
    h_in = spec.h_in
    w_in = spec.w_in
    add_ops = 0
    if kind in CONV_KINDS:
        used = [(_BIN if binary_mac else _REAL, macs)]
        pre_pool = spec.pre_pool != "none"
        if spec.src_bits > 1 and spec.in_bits == 1:  # a stored real map binarized on the fly
            px = (-(-h_in // 2) * -(-w_in // 2)) if pre_pool else h_in * w_in
            used.append((_SIGN32, spec.c_in * px * spec.in_slices))
        if pre_pool:  # 2x2 average pool of the real input
            add_ops = spec.c_in * h_in * w_in
        if spec.post_pool != "none":  # 2x2 max pool of the integer conv outputs
            add_ops += 4 * out_vals
        if spec.norm:
            if ob == 1:  # BN folds into one threshold per (channel, slice)
                used.append((_SIGN16, out_vals * out_sl))
            else:
                used.append((_BN, out_vals * 2 if join == "add_mean" else out_vals))
    elif kind == "las":
        used = [(_REAL, macs), (_BN, 3 * out_vals)]  # depthwise 3x3 real conv; BN_a, _b, _c
        add_ops = out_vals
        if ob == 1:
            used.append((_SIGN16, out_vals * out_sl))
    elif kind == "binarize":
        used = [(_SIGN16, out_vals * out_sl)]
    elif kind == "pool":
        used = []
        add_ops = out_vals * spec.kernel * spec.kernel
    elif kind == "head":
        used = []
        add_ops = spec.c_in * h_in * w_in  # global average pool
    else:
        used = []
    if join != "none":
        if join == "add":
            add_ops += out_vals
        elif join == "add_mean":
            add_ops += out_vals * spec.in_slices  # mean over the slices of h, then the add
        else:  # xnor / or
            used.append((_LOGIC, out_vals * out_sl))
    if add_ops:
        used.append((_ADD, add_ops))
    if spec.act != "none":
        used.append((_ACT, spec.c_in * h_in * w_in if kind == "head" else out_vals))

    inv_par, dyn_pj, stat_pj = c.inv_par, c.dyn_pj, c.stat_pj
    cycles = 0.0
    bound = -1
    for u, a in used:
        cu = a * inv_par[u]
        unit_busy[u] += cu
        if cu > cycles:
            cycles, bound = cu, u
    pj = 0.0
    for u, a in used:
        unit_wait[u] += cycles
        pj += dyn_pj[u] * a * inv_par[u] + stat_pj[u] * cycles
    return cycles, bound, pj


def _sram(spec: LayerSpec, i: int, graph: MapGraph, c: _Consts, out_vals: int,
          pre_pool: bool) -> tuple[float, float, float, float, float, float]:
    """On-chip traffic of layer ``i`` (see the module docstring), as ``(fm_read, residual,
    fm_write, weight_read, weight_store, pj)``: feature-map bits read (operands plus the join's
    ``residual`` read), written; weight and per-channel parameter bits read, the weights' stored
    bits; and the energy."""
    src_bits = spec.src_bits
    j = graph.src0[i]
    if j < 0 or graph.stored[j]:
        if spec.kind in CONV_KINDS:
            groups = spec.groups
            c_out = spec.c_out
            reuse = c_out / groups if groups > 1 else c_out
            if reuse > c.p_out:
                reuse = c.p_out
            elif reuse < 1:
                reuse = 1
            fm_read = spec.macs / reuse * src_bits
            if pre_pool:
                fm_read *= 4
        else:
            fm_read = spec.c_in * spec.h_in * spec.w_in * (spec.src_slices if src_bits == 1 else src_bits)
        pj = fm_read * (c.ppb_fm.get(src_bits) or c.fm_ppb(src_bits))
    else:
        fm_read = pj = 0.0
    jr = graph.src1[i]
    residual = 0.0
    if jr >= 0 and spec.join != "none":
        rb = graph.bits_per_value[jr]
        residual = out_vals * rb * graph.slices[jr]
        fm_read += residual
        pj += residual * (c.ppb_fm.get(rb) or c.fm_ppb(rb))
    if graph.stored[i]:
        fm_write = graph.bits[i]
        pj += fm_write * (c.ppb_fm.get(spec.out_bits) or c.fm_ppb(spec.out_bits))
    else:
        fm_write = 0.0
    aux_bits = spec.aux_params * c.param_bits
    w_bits = spec.w_bits
    if w_bits:
        w_eff = 1 if w_bits == 1 else c.real_w_bits
        w_store = spec.params * w_eff
        w_read = spec.macs * w_eff / c.weight_reuse + aux_bits
    else:
        w_store = 0
        w_read = aux_bits
    pj += w_read * c.ppb_w
    return fm_read, residual, fm_write, w_read, w_store, pj


def _dram(spec: LayerSpec, i: int, graph: MapGraph, layers: tuple[LayerSpec, ...], c: _Consts, w_store: float,
          pre_pool: bool) -> tuple[float, float, float, float]:
    """Off-chip traffic of layer ``i`` (see the module docstring), as ``(weights, fm_in,
    residual, fm_out)`` bits: weights and per-channel parameters loaded once, the spilled excess
    of its main input and of the join's residual read back, its own output's excess spilled."""
    buf = c.buf_bits
    map_bits, stored = graph.bits, graph.stored
    weights = w_store + spec.aux_params * c.param_bits
    fm_out = map_bits[i] - buf if stored[i] == STORED and map_bits[i] > buf else 0.0
    fm_in = residual = 0.0
    j = graph.src0[i]
    if j < 0:
        if c.cost_stem:  # the image arrives from DRAM
            fm_in = spec.c_in * spec.h_in * spec.w_in * spec.src_bits
    elif stored[j] == STORED and map_bits[j] > buf:
        fm_in = _excess_read(spec.inputs[0], map_bits[j] - buf, layers[j].c_out)
        if spec.kind in CONV_KINDS and spec.kernel == 1 and spec.stride > 1 and not pre_pool:
            fm_in /= spec.stride * spec.stride  # a strided 1x1 conv fetches only the pixels it uses
    jr = graph.src1[i]
    if jr >= 0 and jr != j and not graph.delayed[i] and stored[jr] == STORED and map_bits[jr] > buf:
        residual = _excess_read(spec.inputs[1], map_bits[jr] - buf, layers[jr].c_out)
    return weights, fm_in, residual, fm_out


def estimate(plan: Plan, profile: HardwareProfile) -> EnergyReport:
    """Energy of one inference of ``plan`` on ``profile``: per layer and in total (µJ).

    ``plan`` is validated first (space/plan_checks.py; a no-op for a plan from make_plan):
    a broken plan raises :class:`~space.plan_checks.PlanError`.
    """
    validate(plan)
    c = _consts(profile)
    layers = plan.layers
    index = getattr(plan, "_index", None)  # the plan's own name -> position map, if complete
    if not index or len(index) != len(layers):
        index = {s.name: i for i, s in enumerate(layers)}
    graph = MapGraph(layers, index)
    delta = graph.delta
    ppb_dram, buf, cost_stem, cost_head = c.ppb_dram, c.buf_bits, c.cost_stem, c.cost_head

    rows: list[LayerRow] = []
    host: list[str] = []
    unit_busy = [0.0] * _N_UNITS  # cycles each unit works
    unit_wait = [0.0] * _N_UNITS  # cycles of the layers that use it (static power)
    tot_sram = tot_dram = tot_cycles = 0.0
    tot_fm_bits = tot_w_bits = tot_dram_w = tot_dram_fm = 0.0
    bops = flops = 0
    stage_fm = [-1.0] * 8  # per stage: peak live feature-map bits
    stage_w = [-1.0] * 8  # per stage: largest layer's stored weights
    live = 0.0

    for i, spec in enumerate(layers):
        live += delta[i]
        kind = spec.kind
        stage = spec.stage
        macs = spec.macs
        binary_mac = spec.w_bits == 1 and spec.in_bits == 1
        if macs:
            if binary_mac:
                bops += macs
            else:
                flops += macs
        if (stage == 0 and (kind == "conv" or kind == "pool") and not cost_stem) or (
                stage != 0 and (kind == "head" or kind == "fc") and not cost_head):
            host.append(spec.name)  # the profile leaves the stem conv + pool / the head to the host
            continue
        if kind == "shuffle":
            # Concatenation + channel interleave is addressing only: no compute, no SRAM
            # traffic (the block writes into the shuffled map); a spilled excess is costed here.
            dram_fm = graph.spilled(i, buf)
            rows.append(_new_row((  # no compute, no SRAM traffic: only the spilled excess
                spec.name, kind, stage, 0.0, "-", 0.0, 0.0, dram_fm * ppb_dram * _PJ_TO_UJ,  # ... dram_uJ
                0.0, 0.0, 0.0, 0.0, dram_fm, live, 0.0, 0.0, dram_fm,  # ... dram_fm_bits, fm_live_bits, ...
            )))
            tot_dram += dram_fm * ppb_dram
            tot_dram_fm += dram_fm
            if live > stage_fm[stage]:
                stage_fm[stage] = live
            continue

        out_sl = spec.out_slices if spec.out_bits == 1 else 1
        out_vals = spec.c_out if kind == "head" or kind == "fc" else spec.c_out * spec.h_out * spec.w_out
        pre_pool = kind in CONV_KINDS and spec.pre_pool != "none"
        cycles, bound, compute_pj = _compute(spec, binary_mac, out_vals, out_sl, c, unit_busy, unit_wait)
        (sram_fm_read_bits, sram_residual_bits, sram_fm_write_bits, sram_weight_bits, w_store,
         sram_pj) = _sram(spec, i, graph, c, out_vals, pre_pool)
        if spec.w_bits and w_store > stage_w[stage]:
            stage_w[stage] = w_store
        dram_weight_bits, dram_fm_in, dram_residual_bits, dram_fm_write_bits = _dram(
            spec, i, graph, layers, c, w_store, pre_pool)
        dram_fm_bits = dram_fm_in + dram_residual_bits + dram_fm_write_bits
        dram_pj = (dram_weight_bits + dram_fm_bits) * ppb_dram
        rows.append(_new_row((  # the fields of LayerRow, in order, from the locals of the same names
            spec.name,  # name
            kind,
            stage,
            cycles,
            UNIT_NAMES[bound] if bound >= 0 else "-",  # bound_by
            compute_pj * _PJ_TO_UJ,  # compute_uJ
            sram_pj * _PJ_TO_UJ,  # sram_uJ
            dram_pj * _PJ_TO_UJ,  # dram_uJ
            sram_fm_read_bits,
            sram_fm_write_bits,
            sram_weight_bits,
            dram_weight_bits,
            dram_fm_bits,
            live,  # fm_live_bits
            sram_residual_bits,
            dram_residual_bits,
            dram_fm_write_bits,
        )))
        tot_sram += sram_pj
        tot_dram += dram_pj
        tot_cycles += cycles
        tot_fm_bits += sram_fm_read_bits + sram_fm_write_bits
        tot_w_bits += sram_weight_bits
        tot_dram_w += dram_weight_bits
        tot_dram_fm += dram_fm_bits
        if live > stage_fm[stage]:
            stage_fm[stage] = live

    dyn_pj, stat_pj = c.dyn_pj, c.stat_pj
    units_uj = tuple(
        (dyn_pj[u] * unit_busy[u] + stat_pj[u] * unit_wait[u]) * _PJ_TO_UJ for u in range(_N_UNITS)
    )
    return EnergyReport(
        profile=profile.name,
        compute_uJ=sum(units_uj),
        sram_uJ=tot_sram * _PJ_TO_UJ,
        dram_uJ=tot_dram * _PJ_TO_UJ,
        cycles=tot_cycles,
        sram_fm_bits=tot_fm_bits,
        sram_weight_bits=tot_w_bits,
        dram_weight_bits=tot_dram_w,
        dram_fm_bits=tot_dram_fm,
        bops=bops,
        flops=flops,
        units_uJ=units_uj,
        stage_peaks=(stage_fm, stage_w, buf, c.wbuf_bits),
        host_layers=tuple(host),
        rows=tuple(rows),
    )


def _excess_read(tap: Tap, excess: float, channels: int) -> float:
    """Bits of a spilled map's excess that reading ``tap`` (a channel range) brings back."""
    if tap.lo == 0 and tap.hi is None:
        return excess
    hi = channels if tap.hi is None else tap.hi
    return excess * (hi - tap.lo) / channels
