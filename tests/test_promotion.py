"""Multi-fidelity promotion: non-dominated fronts, crowding tie-break, asynchronous quotas."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boolnas.search.pareto import dominates
from boolnas.search.promotion import crowding_distances, next_promotion, nondominated_fronts, promotion_order
from boolnas.search.rungs import SchedulerConfig, rung_agreement, rung_budget, rung_state

POINTS = st.lists(st.tuples(st.sampled_from([0.1, 0.4, 0.5, 0.8, 0.9]), st.sampled_from([1.0, 2.0, 3.0, 7.0])),
                  max_size=30)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(POINTS)
def test_fronts_are_nondominated_sorting(points: list[tuple[float, float]]) -> None:
    fronts = nondominated_fronts(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    level = {i: n for n, f in enumerate(fronts) for i in f}
    for i, p in enumerate(points):
        # no member of a front dominates another; each member of front n > 0 is dominated by one of front n-1
        assert not any(dominates(points[j], p) for j in fronts[level[i]])
        if level[i]:
            assert any(dominates(points[j], p) for j in fronts[level[i] - 1])


def test_crowding_keeps_both_ends_and_prefers_wide_gaps() -> None:
    # one front: (acc, energy) from cheap and weak to costly and accurate; index 2 sits in the widest gap
    points = [(0.50, 1.0), (0.55, 1.2), (0.70, 4.0), (0.88, 9.0), (0.90, 10.0)]
    assert nondominated_fronts(points) == [[4, 3, 2, 1, 0]]
    crowd = crowding_distances(points, range(5))
    assert crowd[0] == crowd[4] == math.inf
    assert promotion_order(points)[:3] == [0, 4, 2]


def test_a_dominated_candidate_comes_after_the_whole_first_front() -> None:
    points = [(0.9, 10.0), (0.5, 1.0), (0.6, 5.0), (0.55, 6.0)]  # 3 is dominated by 2
    assert promotion_order(points)[-1] == 3


def test_promotion_quota_is_one_in_eta_and_nothing_is_promoted_twice() -> None:
    rung0 = [(f"c{i}", (0.1 * i, 1.0 + i)) for i in range(6)]  # all on one front
    assert next_promotion({0: rung0[:2]}, {}, eta=3, top_rung=2) is None  # 2 // 3 = 0 slots
    first = next_promotion({0: rung0[:3]}, {}, eta=3, top_rung=2)
    assert first is not None and first[1] == 1
    assert next_promotion({0: rung0[:3]}, {1: {first[0]}}, eta=3, top_rung=2) is None
    second = next_promotion({0: rung0[:6]}, {1: {first[0]}}, eta=3, top_rung=2)
    assert second is not None and second[0] != first[0]


def test_the_highest_rung_is_served_first() -> None:
    # one front; after its two ends, c4 sits in the widest gap: rung 0's top three are c0, c8, c4
    accs, energies = [0.0, 0.01, 0.02, 0.03, 0.4, 0.77, 0.78, 0.79, 0.8], [1, 1.1, 1.2, 1.3, 5, 8.7, 8.8, 8.9, 9]
    rung0 = [(f"c{i}", (a, float(e))) for i, (a, e) in enumerate(zip(accs, energies))]
    assert [rung0[i][0] for i in promotion_order([p for _, p in rung0])[:3]] == ["c0", "c8", "c4"]
    rung1 = [("c8", (0.95, 9.0)), ("c0", (0.30, 1.0)), ("c4", (0.70, 5.0))]
    got = next_promotion({0: rung0, 1: rung1}, {1: {"c8", "c0", "c4"}}, eta=3, top_rung=2)
    assert got is not None and got[1] == 2 and got[0] in {"c8", "c0", "c4"}
    assert next_promotion({0: rung0, 1: rung1}, {1: {"c8", "c0", "c4"}, 2: {got[0]}}, eta=3, top_rung=2) is None


def test_eta_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="eta"):
        next_promotion({}, {}, eta=1, top_rung=2)


# --------------------------------------------------------------------------- rungs in a study
def _trial(number: int, key: str, rung: int, acc: float, energy: float,
           loss: float | None = None) -> optuna.trial.FrozenTrial:
    attrs = {"candidate": key, "rung": rung, "accuracy": acc, "energy_uJ": energy, "feasible": True}
    if loss is not None:
        attrs["train_loss_sum"] = loss
    t = optuna.create_trial(values=[acc, energy], user_attrs=attrs)
    t.number = number
    return t


def test_rung_state_counts_each_candidate_once_per_rung() -> None:
    trials = [_trial(0, "a", 0, 0.5, 1.0), _trial(1, "b", 0, 0.6, 2.0), _trial(2, "a", 0, 0.5, 1.0),
              _trial(3, "a", 1, 0.7, 1.0)]
    measured, taken, source = rung_state(trials)
    assert [k for k, _ in measured[0]] == ["a", "b"] and [k for k, _ in measured[1]] == ["a"]
    assert taken == {0: {"a", "b"}, 1: {"a"}} and source[("a", 0)] == 0


def test_rung_agreement_is_kendall_tau_with_an_interval() -> None:
    sched = SchedulerConfig.from_conf("asha", rungs=(0.25, 1.0), min_tau=0.5)
    accs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    same = [_trial(i, f"c{i}", 0, a, 1.0 + i) for i, a in enumerate(accs)]
    same += [_trial(10 + i, f"c{i}", 1, a + 0.1, 1.0 + i) for i, a in enumerate(accs)]
    (agree,) = rung_agreement(same, sched)
    assert agree.n == 8 and agree.tau == pytest.approx(1.0) and not agree.low
    flipped = same[:8] + [_trial(10 + i, f"c{i}", 1, 1.0 - a, 1.0 + i) for i, a in enumerate(accs)]
    (disagree,) = rung_agreement(flipped, sched)
    assert disagree.tau == pytest.approx(-1.0) and disagree.low and "raise the lowest rung" in disagree.describe()
    shuffled = same[:8] + [_trial(10 + i, f"c{i}", 1, a, 1.0 + i)
                           for i, a in enumerate([0.3, 0.1, 0.2, 0.6, 0.4, 0.5, 0.8, 0.7])]
    (mid,) = rung_agreement(shuffled, sched)
    assert mid.ci[0] < mid.tau < mid.ci[1] and -1 <= mid.ci[0] and mid.ci[1] <= 1
    (few,) = rung_agreement(same[:2] + same[8:10], sched)
    assert few.n == 2 and math.isnan(few.tau) and "too few" in few.describe()


def test_rank_by_loss_sum_promotes_the_lowest_loss_and_measures_it_against_the_upper_accuracy() -> None:
    # equal energy: one candidate per front, so promotion follows the signal alone
    accs, losses = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [60.0, 50.0, 40.0, 30.0, 20.0, 10.0]  # the two disagree
    rung0 = [_trial(i, f"c{i}", 0, a, 1.0, loss) for i, (a, loss) in enumerate(zip(accs, losses))]
    by_acc, _, _ = rung_state(rung0)
    by_loss, _, _ = rung_state(rung0, "loss_sum")
    assert [p[0] for _, p in by_loss[0]] == [-x for x in losses] and [p[0] for _, p in by_acc[0]] == accs
    assert next_promotion(by_acc, {}, eta=3, top_rung=1) == ("c0", 1)
    assert next_promotion(by_loss, {}, eta=3, top_rung=1) == ("c5", 1)
    # without a loss sum a candidate ranks last instead of breaking the ranking
    assert rung_state([_trial(9, "x", 0, 0.99, 1.0)], "loss_sum")[0][0][0][1][0] == -math.inf
    # in-study fidelity: the lower rung's signal (loss) against the upper rung's accuracy
    sched = SchedulerConfig.from_conf("asha", rungs=(0.25, 1.0), rank_by="loss_sum")
    upper = [_trial(10 + i, f"c{i}", 1, 1.0 - a, 1.0) for i, a in enumerate(accs)]  # ordered like the losses
    (agree,) = rung_agreement(rung0 + upper, sched)
    assert agree.tau == pytest.approx(1.0)
    (plain,) = rung_agreement(rung0 + upper, SchedulerConfig.from_conf("asha", rungs=(0.25, 1.0)))
    assert plain.tau == pytest.approx(-1.0)


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "hyperband"}, "scheduler.name"),
    ({"rungs": [1.0, 0.25]}, "increasing"),
    ({"rungs": []}, "non-empty"),
    ({"eta": 1}, "eta"),
    ({"min_tau": 2}, "min_tau"),
    ({"rank_by": "loss"}, "rank_by"),
    ({"bogus": 1}, "unknown scheduler option"),
])
def test_bad_scheduler_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SchedulerConfig.from_dict({"name": "asha", **options})


def test_rung_budgets_scale_the_training_images() -> None:
    from boolnas.evaluators.training import Budget

    sched = SchedulerConfig.from_conf("asha", rungs=(0.25, 1.0, 4.0))
    budget = Budget.from_conf("tiny", train_subset=8192, batch_size=32)
    assert [rung_budget(budget, sched, k).train_subset for k in range(3)] == [2048, 8192, 32768]
    assert rung_budget(budget, SchedulerConfig.from_conf("none"), 0) is budget
    with pytest.raises(ValueError, match="train_subset"):
        sched.check_budget(Budget.from_conf("tiny", train_subset=None))
    with pytest.raises(ValueError, match="one batch"):
        SchedulerConfig.from_conf("asha", rungs=(0.001, 1.0)).check_budget(budget)
