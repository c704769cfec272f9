"""Hypothesis strategies for the search space.

``genotypes()`` draws every Genotype field from ``space.genotype.CHOICES`` with values mixed
per stage (and per stage transition), 1..2 blocks per stage and a small ``width_mult``, so
networks built from them stay small and fast to run.
"""

from __future__ import annotations

from hypothesis import strategies as st

from boolnas.space.genotype import (
    CHOICES,
    GLOBAL_FIELDS,
    NUM_STAGES,
    PER_STAGE_FIELDS,
    PER_TRANSITION_FIELDS,
    Genotype,
)

WIDTH_MULTS = (0.25, 0.5)
MAX_TEST_BLOCKS = 2


def _per(field: str, n: int) -> st.SearchStrategy[tuple]:
    if field == "blocks":
        values: st.SearchStrategy = st.integers(1, MAX_TEST_BLOCKS)
    else:
        values = st.sampled_from(CHOICES[field])
    return st.tuples(*([values] * n))


@st.composite
def genotypes(draw: st.DrawFn) -> Genotype:
    """A genotype with every field drawn, per-stage values mixed independently."""
    kwargs: dict = {}
    for name in PER_STAGE_FIELDS:
        kwargs[name] = draw(_per(name, NUM_STAGES))
    for name in PER_TRANSITION_FIELDS:
        kwargs[name] = draw(_per(name, NUM_STAGES - 1))
    for name in GLOBAL_FIELDS:
        if name == "width_mult":
            kwargs[name] = draw(st.sampled_from(WIDTH_MULTS))
        else:
            kwargs[name] = draw(st.sampled_from(CHOICES[name]))
    return Genotype(**kwargs)
