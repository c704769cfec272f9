"""The Pareto front's sweep against the definition: non-dominated, first of equal points kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from boolnas.search.pareto import dominates, front, knee, knee_of, nondominated, pareto_mask

# few distinct values, so ties in accuracy, energy and whole points are common
POINTS = st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.5, 0.7, 0.9]), st.sampled_from([1.0, 2.0, 5.0, 9.0])),
                  max_size=25)


@settings(max_examples=800, deadline=None, derandomize=True)
@given(POINTS)
def test_mask_is_the_definition(points: list[tuple[float, float]]) -> None:
    expected = [not (any(dominates(q, p) for q in points) or p in points[:i]) for i, p in enumerate(points)]
    assert pareto_mask(points) == expected
    idx = front(points)
    assert [points[i][1] for i in idx] == sorted(points[i][1] for i in idx)


# three objectives, mixed directions; few distinct values so ties and equal rows are common
ROWS = st.lists(st.tuples(st.sampled_from([0.1, 0.5, 0.9]), st.sampled_from([1.0, 2.0, 5.0]),
                          st.sampled_from([10.0, 20.0])), max_size=25)
DIRS = ["maximize", "minimize", "minimize"]


def _dominates_nd(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    ca, cb = (-a[0], a[1], a[2]), (-b[0], b[1], b[2])
    return all(x <= y for x, y in zip(ca, cb)) and ca != cb


@settings(max_examples=800, deadline=None, derandomize=True)
@given(ROWS)
def test_nondominated_is_the_definition(rows: list[tuple[float, float, float]]) -> None:
    expected = [not (any(_dominates_nd(q, r) for q in rows) or r in rows[:i]) for i, r in enumerate(rows)]
    assert nondominated(rows, DIRS) == expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ROWS)
def test_knee_of_is_a_front_member(rows: list[tuple[float, float, float]]) -> None:
    k = knee_of(rows, DIRS)
    assert (k is None) == (not rows)
    if rows:
        assert nondominated(rows, DIRS)[k]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(POINTS)
def test_two_objectives_use_the_2d_front_and_knee(points: list[tuple[float, float]]) -> None:
    assert nondominated(points, ["maximize", "minimize"]) == pareto_mask(points)
    assert knee_of(points, ["maximize", "minimize"]) == knee(points)
    flipped = [(e, a) for a, e in points]  # the same objectives in the other order
    assert knee_of(flipped, ["minimize", "maximize"]) in (None, *[i for i, m in enumerate(pareto_mask(points)) if m])


def test_knee_of_three_objectives_is_the_bulge_of_the_front() -> None:
    # extremes (1,0,0), (0,1,0), (0,0,1) span the plane x+y+z=1; the member farthest from it wins
    rows = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.3, 0.3, 0.3), (0.45, 0.45, 0.05)]
    assert knee_of(rows, ["minimize"] * 3) == 3
    assert knee_of([(1.0, 1.0, 1.0)], ["minimize"] * 3) == 0


def test_bad_directions_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="maximize"):
        nondominated([(1.0, 2.0, 3.0)], ["max", "min", "min"])
    with pytest.raises(ValueError, match="3 objectives"):
        nondominated([(1.0, 2.0)], DIRS)
