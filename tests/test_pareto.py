"""The Pareto front's sweep against the definition: non-dominated, first of equal points kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from search.pareto import dominates, front, pareto_mask

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
