"""The trial record (search/trial_record.py): one definition of what a trial's user attributes hold."""

from __future__ import annotations

from boolnas.search.config import OBJECTIVES
from boolnas.search.trial_record import (
    BY_NAME,
    COLUMNS,
    EXPORTED,
    FIELDS,
    INHERITED,
    REUSED,
    Attr,
    feasible_points,
    is_feasible,
)

# trials.csv after number, state, preset and the genotype's fields: a published format, pinned here
CSV_COLUMNS = ("accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "cycles", "bops", "flops", "ops",
               "size_bits", "zc_naswot", "zc_grad_norm", "zc_snip", "train_time_s", "threads", "device", "diverged",
               "feasible", "reused_from", "retry_of", "fail_reason", "worker", "sampler", "variant", "rung",
               "promoted_from", "candidate", "key")


def test_columns_and_exported_metrics_keep_their_order() -> None:
    assert COLUMNS == CSV_COLUMNS
    assert EXPORTED == ("accuracy", "energy_uJ", "compute_uJ", "sram_uJ", "dram_uJ", "cycles", "ops", "size_bits",
                        "train_time_s")


def test_every_name_is_defined_once_and_every_attr_is_a_field() -> None:
    assert len(BY_NAME) == len(FIELDS)
    names = {v for k, v in vars(Attr).items() if k.isupper()}
    assert names <= set(BY_NAME)
    assert {metric for _, metric in OBJECTIVES.values()} <= set(REUSED)
    assert set(INHERITED) <= set(REUSED)  # what a promotion inherits, a reuse copies as well
    assert Attr.ACCURACY not in INHERITED  # a promotion trains again


def test_feasible_filter() -> None:
    records = [{"accuracy": 0.5, "energy_uJ": 2.0, "feasible": True}, {"accuracy": 0.0, "energy_uJ": 9.0,
               "feasible": False}, {"accuracy": 0.4, "energy_uJ": 1.0}, {"energy_uJ": 1.0}]
    assert [is_feasible(r) for r in records] == [True, False, True, True]
    assert feasible_points(records) == [(0.5, 2.0), (0.4, 1.0)]
