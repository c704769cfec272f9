"""Which candidate a multi-fidelity search trains further: asynchronous successive halving by
Pareto rank (pure Python, no Optuna).

A rung holds the candidates measured at one training budget, each as (accuracy at that rung,
energy). Asynchronous successive halving (ASHA, Li et al. 2020) promotes a candidate of rung k
to rung k+1 as soon as it is among the best ``1/eta`` of everything rung k has measured so far
(no barrier: a worker asking for work gets the highest promotable candidate, else a new one).

"Best" with two objectives is an order, not a score:

1. **Non-dominated sorting** (NSGA-II's fronts) on (accuracy max, energy min): front 1 first,
   then front 2, ...
2. Within a front, **crowding distance** (larger first). Why this tie-break: it needs no
   reference point (a hypervolume contribution depends on one, and early rungs have too few
   candidates to place it well), it always ranks a front's two ends first, so the cheapest and
   the most accurate candidate of a rung are promoted before its middle, and it then prefers
   candidates in the widest gaps, which keeps the promoted set spread along the energy axis
   instead of crowding around one accuracy level. O(n log n) per front.
3. Remaining ties by insertion order (earlier measured first), so the order is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

Point = tuple[float, float]  # (accuracy, energy)


def nondominated_fronts(points: Sequence[Point]) -> list[list[int]]:
    """Indices of ``points`` in successive non-dominated fronts (accuracy max, energy min).

    Sorted by (accuracy desc, energy asc), every member of a front seen so far is at least as
    accurate as the next point, so the front dominates it exactly when its lowest-energy member
    does. A point joins the first front that does not dominate it; equal points share a front.
    O(n log n + n x fronts).
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1], i))
    fronts: list[list[int]] = []
    best_energy: list[float] = []  # per front: lowest energy among its members
    best_accuracy: list[float] = []  # per front: the highest accuracy at that energy
    for i in order:
        acc, energy = points[i]
        for f, (e, a) in enumerate(zip(best_energy, best_accuracy)):
            if not (e < energy or (e == energy and a > acc)):
                fronts[f].append(i)
                if energy < e:
                    best_energy[f], best_accuracy[f] = energy, acc
                break
        else:
            fronts.append([i])
            best_energy.append(energy)
            best_accuracy.append(acc)
    return fronts


def crowding_distances(points: Sequence[Point], members: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each member of one front (ends: infinite)."""
    out = {i: 0.0 for i in members}
    if len(members) <= 2:
        return {i: math.inf for i in members}
    for axis in (0, 1):
        ranked = sorted(members, key=lambda i: (points[i][axis], i))
        lo, hi = points[ranked[0]][axis], points[ranked[-1]][axis]
        out[ranked[0]] = out[ranked[-1]] = math.inf
        span = hi - lo
        if span <= 0:
            continue
        for prev, mid, nxt in zip(ranked, ranked[1:], ranked[2:]):
            out[mid] += (points[nxt][axis] - points[prev][axis]) / span
    return out


def promotion_order(points: Sequence[Point]) -> list[int]:
    """Indices of ``points``, best first: by front, then crowding distance, then index."""
    order: list[int] = []
    for members in nondominated_fronts(points):
        crowd = crowding_distances(points, members)
        order += sorted(members, key=lambda i: (-crowd[i], i))
    return order


def next_promotion(rungs: Mapping[int, Sequence[tuple[Hashable, Point]]], taken: Mapping[int, set[Hashable]],
                   eta: int, top_rung: int) -> tuple[Hashable, int] | None:
    """The candidate to train next at a higher rung, as (candidate, rung it moves to), or None.

    ``rungs[k]``: the candidates measured at rung k so far, in the order they finished, with
    their (accuracy at rung k, energy). ``taken[k]``: candidates already at rung k (finished,
    running or queued), so none is promoted twice. The highest rung is looked at first, so work
    flows to the top as soon as it may.
    """
    if eta < 2:
        raise ValueError(f"the reduction factor eta must be an integer >= 2, got {eta}")
    for k in range(top_rung - 1, -1, -1):
        measured = list(rungs.get(k, ()))
        quota = len(measured) // eta
        if quota == 0:
            continue
        points = [p for _, p in measured]
        for i in promotion_order(points)[:quota]:
            candidate = measured[i][0]
            if candidate not in taken.get(k + 1, set()):
                return candidate, k + 1
    return None
