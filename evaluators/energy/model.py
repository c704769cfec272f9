"""The built-in energy model: pure arithmetic over a Plan and a HardwareProfile.

It follows the accelerator of the BoolNet paper (reference section 4). Per layer:

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

from boolnas.evaluators.energy.profile import UNIT_INDEX, UNIT_NAMES, HardwareProfile
from boolnas.evaluators.energy.report import EnergyReport
from boolnas.space.plan import INPUT, Plan, Tap

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

_PJ_TO_UJ = 1e-6


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

    def fm_ppb(self, bits: int, profile: HardwareProfile) -> float:
        value = self.ppb_fm.get(bits)
        if value is None:
            value = self.ppb_fm[bits] = profile.fm_pj_per_bit(bits)
        return value


def _consts(profile: HardwareProfile) -> _Consts:
    consts = profile.__dict__.get("_energy_consts")
    if consts is None:
        consts = _Consts(profile)
        object.__setattr__(profile, "_energy_consts", consts)  # a cache, not state
    return consts


def estimate(plan: Plan, profile: HardwareProfile) -> EnergyReport:
    """Energy of one inference of ``plan`` on ``profile``: per layer and in total (µJ)."""
    c = _consts(profile)
    layers = plan.layers
    n = len(layers)
    index = getattr(plan, "_index", None)  # the plan's own name -> position map, if complete
    if not index or len(index) != n:
        index = {s.name: i for i, s in enumerate(layers)}

    # ------------------------------------------------------------ pass 1: the map graph
    # Per layer: its input producers (-1: the image), its output map's bits / bits per value /
    # slices, and how many distinct layers read the map, the last of them last.
    map_bits = [0.0] * n
    map_bpv = [32] * n
    map_sl = [1] * n
    src0 = [-1] * n
    src1 = [-2] * n  # -2: no second input
    n_readers = [0] * n  # distinct layers that read the map
    last_reader = [-1] * n
    main_of = [-1] * n  # the last layer that reads the map as its main input
    first_in_block: dict[tuple[int, int, int], int] = {}  # (map, stage, block) -> its first reader there
    delayed = [False] * n  # a join whose residual comes from the span's delay line, not from memory
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

    # stored: 1 a stored map, 0 streamed (or the network's output), 2 written straight into the
    # map of the feature-reuse shuffle that is its only reader.
    stored = [1] * n
    delta = [0.0] * (n + 1)  # live-bits changes: a stored map lives producer .. last reader
    for j in range(n):
        readers = n_readers[j]
        if not readers:
            stored[j] = 0
            continue
        last = last_reader[j]
        if readers == 1:
            ck = layers[last].kind
            if ck in STREAMING_KINDS:
                stored[j] = 0
                continue
            if ck == "shuffle" and main_of[j] == last:
                stored[j] = 2
        b = map_bits[j]
        # a shuffled map is made of maps that are live at the shuffle itself: count it after
        start = j + 1 if layers[j].kind == "shuffle" else j
        if start <= last:
            delta[start] += b
            delta[last + 1] -= b

    # ------------------------------------------------------------ pass 2: cost every layer
    inv_par, dyn_pj, stat_pj = c.inv_par, c.dyn_pj, c.stat_pj
    ppb_w, ppb_dram, buf = c.ppb_w, c.ppb_dram, c.buf_bits
    ppb_fm = c.ppb_fm
    ppb1 = ppb_fm[1]
    p_out, real_w_bits, param_bits, w_reuse = c.p_out, c.real_w_bits, c.param_bits, c.weight_reuse
    cost_stem, cost_head = c.cost_stem, c.cost_head

    rows: list[tuple] = []
    host: list[str] = []
    unit_busy = [0.0] * _N_UNITS  # cycles each unit works
    unit_wait = [0.0] * _N_UNITS  # cycles of the layers that use it (static power)
    tot_sram = tot_dram = tot_cycles = 0.0
    tot_fm_bits = tot_w_bits = tot_dram_w = tot_dram_fm = 0.0
    bops = flops = 0
    stage_fm = [-1.0] * 8
    stage_w = [-1.0] * 8
    live = 0.0

    for i, spec in enumerate(layers):
        live += delta[i]
        kind = spec.kind
        stage = spec.stage
        macs = spec.macs
        w_bits = spec.w_bits
        binary_mac = w_bits == 1 and spec.in_bits == 1
        if macs:
            if binary_mac:
                bops += macs
            else:
                flops += macs
        if stage == 0:
            if (kind == "conv" or kind == "pool") and not cost_stem:
                host.append(spec.name)
                continue
        elif (kind == "head" or kind == "fc") and not cost_head:
            host.append(spec.name)
            continue
        if kind == "shuffle":
            # Concatenation + channel interleave is addressing only: no compute, no SRAM
            # traffic (the block writes into the shuffled map); a spilled excess is costed here.
            dram_fm = map_bits[i] - buf if stored[i] == 1 and map_bits[i] > buf else 0.0
            rows.append(
                (
                    spec.name,
                    kind,
                    stage,
                    0.0,
                    "-",
                    0.0,
                    0.0,
                    dram_fm * ppb_dram * _PJ_TO_UJ,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    dram_fm,
                    live,
                    0.0,
                    0.0,
                    dram_fm,
                )
            )
            tot_dram += dram_fm * ppb_dram
            tot_dram_fm += dram_fm
            if live > stage_fm[stage]:
                stage_fm[stage] = live
            continue

        c_out = spec.c_out
        ob = spec.out_bits
        out_sl = spec.out_slices if ob == 1 else 1
        out_vals = c_out if kind == "head" or kind == "fc" else c_out * spec.h_out * spec.w_out
        src_bits = spec.src_bits
        join = spec.join
        h_in = spec.h_in
        w_in = spec.w_in

        # -------------------------------------------------- operations per unit type
        # (unit, operations) of what the layer uses; the main unit first
        conv_like = kind in CONV_KINDS
        pre_pool = False
        add_ops = 0
        if conv_like:
            used = [(_BIN if binary_mac else _REAL, macs)]
            pre_pool = spec.pre_pool != "none"
            if src_bits > 1 and spec.in_bits == 1:  # a stored real map binarized on the fly
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

        cycles = 0.0
        bound = -1
        for u, a in used:
            cu = a * inv_par[u]
            unit_busy[u] += cu
            if cu > cycles:
                cycles, bound = cu, u
        compute_pj = 0.0
        for u, a in used:
            unit_wait[u] += cycles
            compute_pj += dyn_pj[u] * a * inv_par[u] + stat_pj[u] * cycles

        # -------------------------------------------------- SRAM traffic
        j = src0[i]
        if j < 0 or stored[j]:
            if conv_like:
                groups = spec.groups
                reuse = c_out / groups if groups > 1 else c_out
                if reuse > p_out:
                    reuse = p_out
                elif reuse < 1:
                    reuse = 1
                fm_read = macs / reuse * src_bits
                if pre_pool:
                    fm_read *= 4
            else:
                fm_read = spec.c_in * h_in * w_in * (spec.src_slices if src_bits == 1 else src_bits)
            sram_pj = fm_read * (
                ppb1 if src_bits == 1 else ppb_fm.get(src_bits) or c.fm_ppb(src_bits, profile)
            )
        else:
            fm_read = sram_pj = 0.0
        jr = src1[i]
        sram_res = 0.0
        if jr >= 0 and join != "none":
            rb = map_bpv[jr]
            sram_res = out_vals * rb * map_sl[jr]
            fm_read += sram_res
            sram_pj += sram_res * (ppb1 if rb == 1 else ppb_fm.get(rb) or c.fm_ppb(rb, profile))
        if stored[i]:
            fm_write = map_bits[i]
            sram_pj += fm_write * (ppb1 if ob == 1 else ppb_fm.get(ob) or c.fm_ppb(ob, profile))
        else:
            fm_write = 0.0
        aux_bits = spec.aux_params * param_bits
        if w_bits:
            w_eff = 1 if w_bits == 1 else real_w_bits
            w_store = spec.params * w_eff
            w_read = macs * w_eff / w_reuse + aux_bits
            if w_store > stage_w[stage]:
                stage_w[stage] = w_store
        else:
            w_store = 0
            w_read = aux_bits
        sram_pj += w_read * ppb_w

        # -------------------------------------------------- DRAM traffic
        dram_w = w_store + aux_bits
        dram_out = map_bits[i] - buf if stored[i] == 1 and map_bits[i] > buf else 0.0
        dram_in = dram_res = 0.0
        if j < 0:
            if cost_stem:  # the image arrives from DRAM
                dram_in = spec.c_in * h_in * w_in * src_bits
        elif stored[j] == 1 and map_bits[j] > buf:
            dram_in = _excess_read(spec.inputs[0], map_bits[j] - buf, layers[j].c_out)
            if conv_like and spec.kernel == 1 and spec.stride > 1 and not pre_pool:
                dram_in /= spec.stride * spec.stride  # a strided 1x1 conv fetches only the pixels it uses
        if jr >= 0 and jr != j and not delayed[i] and stored[jr] == 1 and map_bits[jr] > buf:
            dram_res = _excess_read(spec.inputs[1], map_bits[jr] - buf, layers[jr].c_out)
        dram_fm = dram_in + dram_res + dram_out
        dram_pj = (dram_w + dram_fm) * ppb_dram

        rows.append(
            (
                spec.name,
                kind,
                stage,
                cycles,
                UNIT_NAMES[bound] if bound >= 0 else "-",
                compute_pj * _PJ_TO_UJ,
                sram_pj * _PJ_TO_UJ,
                dram_pj * _PJ_TO_UJ,
                fm_read,
                fm_write,
                w_read,
                dram_w,
                dram_fm,
                live,
                sram_res,
                dram_res,
                dram_out,
            )
        )
        tot_sram += sram_pj
        tot_dram += dram_pj
        tot_cycles += cycles
        tot_fm_bits += fm_read + fm_write
        tot_w_bits += w_read
        tot_dram_w += dram_w
        tot_dram_fm += dram_fm
        if live > stage_fm[stage]:
            stage_fm[stage] = live

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
