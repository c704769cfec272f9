"""Pareto fronts, knees and hypervolume (pure Python, no Optuna).

Two families:

- **Any number of objectives** (:func:`nondominated`, :func:`knee_of`): rows of objective
  values with one direction each ("maximize" / "minimize"). This is the study's front: every
  configured objective counts (``is_pareto``, knee, export, logs, reports).
- **Accuracy / energy** (:func:`pareto_mask`, :func:`front`, :func:`knee`, :func:`hypervolume`):
  points ``(accuracy, energy)``, accuracy maximized, energy minimized. The fast 2-D sweep the
  search loop and the replay call after every trial, and the hypervolume, which with more
  objectives configured is the named accuracy-energy projection of the front.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]  # (accuracy, energy_uJ)
DIRECTIONS = ("maximize", "minimize")


def dominates(a: Point, b: Point) -> bool:
    """True when ``a`` is at least as good as ``b`` in both and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_mask(points: Sequence[Point]) -> list[bool]:
    """Which points are non-dominated; of equal points only the first is kept.

    One sweep in order of decreasing accuracy (O(n log n); searches and replays call it after
    every trial): a point survives when its energy is below that of every more accurate point,
    and it is the first of its accuracy with the lowest energy.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1], i))
    mask = [False] * len(points)
    best = float("inf")  # lowest energy among the points of higher accuracy
    j = 0
    while j < len(order):
        acc = points[order[j]][0]
        k = j
        while k < len(order) and points[order[k]][0] == acc:
            k += 1
        first = order[j]  # of this accuracy: the lowest energy, then the lowest index
        if points[first][1] < best:
            mask[first] = True
            best = points[first][1]
        j = k
    return mask


def front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points, by increasing energy."""
    idx = [i for i, m in enumerate(pareto_mask(points)) if m]
    return sorted(idx, key=lambda i: points[i][1])


def hypervolume(points: Sequence[Point], ref_energy: float) -> float:
    """Area dominated by ``points`` inside [0, 1] accuracy x [0, ref_energy], as a fraction of it.

    The reference point (accuracy 0, ``ref_energy``) is fixed per study, so values from
    different moments of one study compare.
    """
    pts = [points[i] for i in front(points) if points[i][1] < ref_energy and points[i][0] > 0]
    area = 0.0
    for j, (acc, energy) in enumerate(pts):
        nxt = pts[j + 1][1] if j + 1 < len(pts) else ref_energy
        area += (nxt - energy) * acc
    return area / ref_energy


def knee(points: Sequence[Point]) -> int | None:
    """The front member farthest from the line joining the front's two ends (normalized axes)."""
    idx = front(points)
    if not idx:
        return None
    if len(idx) <= 2:
        return idx[-1]
    accs = [points[i][0] for i in idx]
    ens = [points[i][1] for i in idx]
    a_span = (max(accs) - min(accs)) or 1.0
    e_span = (max(ens) - min(ens)) or 1.0
    norm = [((points[i][1] - min(ens)) / e_span, (points[i][0] - min(accs)) / a_span) for i in idx]
    (x0, y0), (x1, y1) = norm[0], norm[-1]
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 or 1.0
    dist = [abs((y1 - y0) * x - (x1 - x0) * y + x1 * y0 - y1 * x0) / length for x, y in norm]
    return idx[max(range(len(idx)), key=dist.__getitem__)]


# --------------------------------------------------------------------------- any number of objectives
def _as_costs(rows: Sequence[Sequence[float]], directions: Sequence[str]) -> list[tuple[float, ...]]:
    """Rows turned into costs (every objective minimized)."""
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise ValueError(f"directions must be 'maximize' or 'minimize', got {bad}")
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    out = []
    for row in rows:
        if len(row) != len(signs):
            raise ValueError(f"a row has {len(row)} values for {len(signs)} objectives")
        out.append(tuple(s * float(v) for s, v in zip(signs, row)))
    return out


def nondominated(rows: Sequence[Sequence[float]], directions: Sequence[str]) -> list[bool]:
    """Which rows no other row dominates (at least as good in every objective, better in one);
    of equal rows only the first is kept, as :func:`pareto_mask` does.

    In lexicographic order of the costs a row can only be dominated by one before it, so one
    pass against the kept rows suffices (O(n * front)). Two objectives use the 2-D sweep.
    """
    costs = _as_costs(rows, directions)
    if len(directions) == 2:
        return pareto_mask([(-c[0], c[1]) for c in costs])
    order = sorted(range(len(costs)), key=lambda i: (costs[i], i))
    kept: list[tuple[float, ...]] = []
    mask = [False] * len(costs)
    for i in order:
        c = costs[i]
        if any(all(k <= v for k, v in zip(k_row, c)) for k_row in kept):
            continue  # dominated by, or equal to, a row kept before it
        kept.append(c)
        mask[i] = True
    return mask


def knee_of(rows: Sequence[Sequence[float]], directions: Sequence[str]) -> int | None:
    """The knee of the rows' front: the member farthest from the hyperplane through the front's
    extreme members, in objective space scaled to [0, 1] over the front (Das 1999). With two
    objectives it is the 2-D :func:`knee` (the line joining the front's two ends). When the
    extremes do not span a hyperplane (one member is best in two objectives), the member
    nearest the ideal point. Returns an index into ``rows``."""
    if len(directions) == 2:
        signs = [1.0 if d == "maximize" else -1.0 for d in directions]
        # as (accuracy-like maximized, energy-like minimized)
        return knee([(signs[0] * float(r[0]), -signs[1] * float(r[1])) for r in rows])
    mask = nondominated(rows, directions)
    idx = [i for i, m in enumerate(mask) if m]
    if len(idx) <= 2:
        return idx[-1] if idx else None
    import numpy as np

    costs = np.array([_as_costs([rows[i]], directions)[0] for i in idx], dtype=float)
    span = costs.max(axis=0) - costs.min(axis=0)
    scaled = (costs - costs.min(axis=0)) / np.where(span > 0, span, 1.0)  # 0: best of the front
    extremes = [int(np.lexsort((scaled.sum(axis=1), scaled[:, j]))[0]) for j in range(scaled.shape[1])]
    if len(set(extremes)) == scaled.shape[1]:
        try:
            normal = np.linalg.solve(scaled[extremes], np.ones(scaled.shape[1]))  # plane: normal . x = 1
        except np.linalg.LinAlgError:
            normal = None
        if normal is not None and np.all(np.isfinite(normal)) and np.linalg.norm(normal) > 0:
            dist = np.abs(scaled @ normal - 1.0) / np.linalg.norm(normal)
            return idx[int(np.argmax(dist))]
    return idx[int(np.argmin(np.linalg.norm(scaled, axis=1)))]
