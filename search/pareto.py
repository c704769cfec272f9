"""The accuracy / energy Pareto front, its knee and its hypervolume (pure Python, no Optuna).

Points are ``(accuracy, energy)``: accuracy is maximized, energy minimized. The front is
what reports plot; with extra objectives configured the study keeps all of them, but the
plotted (and ``is_pareto``) front is the accuracy / energy one.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]  # (accuracy, energy_uJ)


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
