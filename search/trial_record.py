"""The trial record: what a search trial's user attributes hold, defined once.

A trial of a search study carries its genotype, its metrics (energy split, op counts, proxy
accuracy, zero-cost scores, ...) and the attributes the workers coordinate by (who trains a
genotype, which worker runs a trial, what a retry or a promotion continues). Every module that
writes or reads them (search/objective.py, report.py, export.py, loop.py, liveness.py, claims.py,
rungs.py, proposals.py, study.py) takes the names from here: :class:`Attr` names each attribute
(:class:`StudyAttr` those of the study itself),
:data:`FIELDS` lists them with their types and roles, and the role tuples (:data:`REUSED`,
:data:`INHERITED`, :data:`COLUMNS`, :data:`EXPORTED`) are derived from it, in its order. Adding
a metric is one line in :data:`FIELDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Attr:
    """The names of a trial's user attributes."""

    # what was measured (the metrics: see FIELDS)
    ACCURACY = "accuracy"
    ENERGY = "energy_uJ"
    OPS = "ops"
    CYCLES = "cycles"
    SIZE_BITS = "size_bits"
    FEASIBLE = "feasible"  # False: over constraints.max_energy_uJ, recorded with accuracy 0, never trained
    CONSTRAINT = "constraint"  # [energy - max_energy_uJ] (<= 0: feasible), Optuna's constraints_func
    LAYERS = "layers"  # per layer [name, compute, SRAM, DRAM] in uJ (the report's breakdown)
    TRAIN_TIME = "train_time_s"
    ENERGY_TIME = "energy_time_s"
    TRAIN_LOSS_SUM = "train_loss_sum"
    TRIAL_TIME = "trial_time_s"
    # what the trial is
    GENOTYPE = "genotype"  # Genotype.to_dict()
    KEY = "key"  # the reuse key: genotype key, @v<variant>, @r<rung> (search/claims.py)
    PRESET = "preset"  # the preset the genotype equals, or None
    SEED = "seed"  # the preset name or arch file a queued seed trial evaluates (search/study.py)
    SAMPLER = "sampler"
    VARIANT = "variant"  # the study's settings variant the metrics were measured under (search/fingerprint.py)
    RUNG = "rung"  # multi-fidelity (search/rungs.py): the trial's rung
    PARENT = "promoted_from"  # the trial a promotion continues
    CANDIDATE = "candidate"  # the genotype key, known before the trial runs (enqueued promotions)
    PROPOSED = "proposed_ehvi"  # a proposed trial's expected hypervolume improvement (search/proposals.py)
    REUSED_FROM = "reused_from"  # the trial whose metrics were copied
    # coordination between workers (search/claims.py, search/liveness.py)
    TRAINS = "trains"  # True: this trial holds the claim to train its key
    WORKER = "worker"  # host:pid of the worker running the trial
    WORKER_NS = "worker_ns"  # that worker's pid namespace
    WORKER_LOST = "worker_lost"  # True: failed because its worker died or stopped sending heartbeats
    RETRY_OF = "retry_of"  # the original trial a retry evaluates again
    FAIL_REASON = "fail_reason"


class StudyAttr:
    """The names of a study's own user attributes (one per study, not per trial)."""

    CONFIG = "config"  # the creating run's composed config (storage password masked): the report's setup
    STORAGE = "storage"  # where the study lives (password masked)
    HV_REF = "hv_ref_energy_uJ"  # the fixed hypervolume reference energy
    OBJECTIVES = "objectives"  # objective names (studies made before Optuna metric names were set)
    FINGERPRINTS = "fingerprints"  # the settings of variant 0 (creation), 1, 2, ... (search/fingerprint.py)
    MAX_RETRY = "max_retry"  # storage.max_retry of the workers (search/liveness.py)


@dataclass(frozen=True)
class Field:
    """One user attribute of the trial record and where it goes.

    ``reused``: copied from a COMPLETE trial of the same key instead of measured again;
    ``inherited``: a promoted trial takes it from its parent (search/rungs.py);
    ``column``: a trials.csv column (search/report.py); ``exported``: in an exported arch
    YAML's metrics (search/export.py)."""

    name: str
    type: Any
    reused: bool = False
    inherited: bool = False
    column: bool = False
    exported: bool = False


NUMBER = (int, float)
_ONCE = {"reused": True, "inherited": True, "column": True}  # measured once per genotype, before any training

# The record, in trials.csv column order (the columns follow number, state, preset and the genotype's fields).
FIELDS: tuple[Field, ...] = (
    Field(Attr.ACCURACY, NUMBER, reused=True, column=True, exported=True),
    Field(Attr.ENERGY, NUMBER, **_ONCE, exported=True),
    Field("compute_uJ", NUMBER, **_ONCE, exported=True),
    Field("sram_uJ", NUMBER, **_ONCE, exported=True),
    Field("dram_uJ", NUMBER, **_ONCE, exported=True),
    Field(Attr.CYCLES, NUMBER, **_ONCE, exported=True),
    Field("bops", NUMBER, **_ONCE),
    Field("flops", NUMBER, **_ONCE),
    Field(Attr.OPS, NUMBER, **_ONCE, exported=True),
    Field(Attr.SIZE_BITS, NUMBER, **_ONCE, exported=True),
    Field("zc_naswot", (float, type(None)), **_ONCE),  # zero-cost scores (None: not finite)
    Field("zc_grad_norm", (float, type(None)), **_ONCE),
    Field("zc_snip", (float, type(None)), **_ONCE),
    Field(Attr.TRAIN_TIME, float, reused=True, column=True, exported=True),
    Field(Attr.ENERGY_TIME, float, reused=True, inherited=True),
    Field("threads", (int, type(None)), reused=True, column=True),
    Field("device", str, reused=True, column=True),
    Field("diverged", bool, reused=True, column=True),
    Field(Attr.FEASIBLE, bool, reused=True, inherited=True, column=True),
    Field(Attr.CONSTRAINT, list, reused=True, inherited=True),
    Field(Attr.LAYERS, list, reused=True, inherited=True),
    Field(Attr.TRAIN_LOSS_SUM, (float, type(None)), reused=True),
    Field(Attr.REUSED_FROM, int, column=True),
    Field(Attr.RETRY_OF, int, column=True),
    Field(Attr.FAIL_REASON, str, column=True),
    Field(Attr.WORKER, str, column=True),
    Field(Attr.SAMPLER, str, column=True),
    Field(Attr.VARIANT, int, column=True),
    Field(Attr.RUNG, int, column=True),
    Field(Attr.PARENT, int, column=True),
    Field(Attr.CANDIDATE, str, column=True),
    Field(Attr.KEY, str, column=True),
    Field(Attr.GENOTYPE, dict),
    Field(Attr.PRESET, (str, type(None))),
    Field(Attr.SEED, str),
    Field(Attr.TRIAL_TIME, float),
    Field(Attr.PROPOSED, float),
    Field(Attr.TRAINS, bool),
    Field(Attr.WORKER_NS, str),
    Field(Attr.WORKER_LOST, bool),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
REUSED = tuple(f.name for f in FIELDS if f.reused)  # a reused trial's metrics
INHERITED = tuple(f.name for f in FIELDS if f.inherited)  # what a promotion takes from its parent
COLUMNS = tuple(f.name for f in FIELDS if f.column)  # trials.csv, after the genotype's fields
EXPORTED = tuple(f.name for f in FIELDS if f.exported)  # an exported arch YAML's metrics
CARRIED = (Attr.RUNG, Attr.PARENT, Attr.CANDIDATE)  # what a retry or a given-back trial must keep


def is_feasible(attrs: Mapping[str, Any]) -> bool:
    """Whether a trial's record counts as within the energy budget: only ``feasible: false``
    (over budget, never trained) does not; a record without the attribute does."""
    return attrs.get(Attr.FEASIBLE) is not False


def feasible_points(attrs: list[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """(accuracy, energy) of the feasible records that hold an accuracy: the hypervolume's points."""
    return [(float(a[Attr.ACCURACY]), float(a[Attr.ENERGY])) for a in attrs if is_feasible(a) and Attr.ACCURACY in a]
