"""Energy-aware proposals (``proposer=ehvi``): use the exact energy before spending training.

Energy is exact and costs about a millisecond; accuracy costs a training. So before a worker
asks for a new trial, the proposer:

1. draws ``candidates`` genotypes of the space at random (not yet in the study, within the
   energy limit) and costs each exactly (the energy model, as the trial would);
2. predicts each one's proxy accuracy with a Bayesian linear model fitted to the study's
   finished trials: one-hot genotype choices plus log energy and log ops (cheap static
   predictors), a Gaussian posterior mean and predictive standard deviation;
3. enqueues the candidate with the largest **expected hypervolume improvement** of the
   accuracy-energy front. Energy is known, accuracy Gaussian, so the expectation is exact: for a
   candidate at energy e, the gain is the sum over the front's staircase steps between e and the
   reference energy of width x E[max(0, A - level)], and E[max(0, A - l)] = (mu - l) Phi(z) +
   sigma phi(z), z = (mu - l) / sigma.

Until ``startup`` trials have finished, and for trials the proposer leaves alone (a fraction
``explore`` of them, seeded), the configured sampler proposes as usual: the proposer is a layer
over any sampler, which keeps exploring. With more than two objectives it stays off (the
expected improvement here is the accuracy-energy one).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from boolnas.search.pareto import front
from boolnas.search.trial_record import Attr, feasible_points, is_feasible
from boolnas.space import Genotype
from boolnas.space.fields import INTEGER, NUMBER, Check, check_fields, options_of
from boolnas.space.records import FromConf, shipped_conf
from boolnas.space.sampling import SearchSpace, sample

PROPOSERS = ("none", "ehvi")
PROPOSED = Attr.PROPOSED  # user attr of a proposed trial: its expected hypervolume improvement


@dataclass(frozen=True)
class ProposerConfig(FromConf):
    """What proposes new candidates besides the sampler. Every value comes from conf/proposer/*.yaml
    (proposers made in code start from one: :meth:`from_conf`); options a mapping leaves out, and
    the whole group for a study recorded before it existed, are those of conf/proposer/none.yaml
    (the sampler alone)."""

    CONF_GROUP: ClassVar[str] = "proposer"

    name: str
    candidates: int  # random genotypes costed per proposal
    startup: int  # finished trials before the first proposal
    explore: float  # share of new trials left to the sampler
    ridge: float  # prior precision of the linear model's weights

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProposerConfig:
        out = cls(**{**shipped_conf("proposer", "none"), **options_of(cls, data, "proposer")})
        check_fields(out, "proposer", name=PROPOSERS, candidates=Check(INTEGER, 1, expected="an integer >= 1"),
                     startup=Check(INTEGER, 2), explore=Check(NUMBER, 0.0, 1.0), ridge=Check(NUMBER, 1e-9, math.inf))
        return out

    @property
    def active(self) -> bool:
        return self.name == "ehvi"


# --------------------------------------------------------------------------- expected improvement
def expected_hv_improvement(mu: np.ndarray, sigma: np.ndarray, energy: np.ndarray,
                            points: Sequence[tuple[float, float]], ref_energy: float) -> np.ndarray:
    """E[HV gain] of candidates with Gaussian accuracy N(mu, sigma^2) and exact ``energy`` over the
    front of ``points`` (accuracy, energy), in the units of search/pareto.py ``hypervolume``
    (the area inside [0, 1] x [0, ref_energy], as a fraction of it)."""
    idx = front(points)  # by increasing energy, accuracy increasing along it
    xs = [points[i][1] for i in idx if points[i][1] < ref_energy]
    levels = [points[i][0] for i in idx if points[i][1] < ref_energy]
    # staircase: on [xs[j], xs[j+1]) the front dominates accuracy up to levels[j]; below xs[0], nothing
    edges = np.array([0.0, *xs, ref_energy])
    level = np.array([0.0, *levels])
    sigma = np.maximum(sigma, 1e-9)
    gain = np.zeros_like(mu, dtype=float)
    for j in range(len(level)):
        lo, hi = edges[j], edges[j + 1]
        width = np.clip(hi - np.maximum(energy, lo), 0.0, None)  # the part of this step right of the candidate
        z = (mu - level[j]) / sigma
        gain += width * ((mu - level[j]) * _norm_cdf(z) + sigma * _norm_pdf(z))
    return gain / ref_energy


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------- the accuracy model
class LinearModel:
    """Bayesian ridge regression: Gaussian prior N(0, 1/ridge) on the weights, noise variance
    estimated from the residuals; predicts a mean and a predictive standard deviation."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ridge: float) -> None:
        self.mean_x, self.scale_x = x.mean(axis=0), x.std(axis=0) + 1e-9
        self.mean_y = float(y.mean())
        xs = (x - self.mean_x) / self.scale_x
        a = xs.T @ xs + ridge * np.eye(xs.shape[1])
        self.cov = np.linalg.inv(a)
        self.w = self.cov @ xs.T @ (y - self.mean_y)
        resid = y - self.mean_y - xs @ self.w
        dof = max(1, len(y) - 1)
        self.noise = float(max(resid @ resid / dof, 1e-6))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = (x - self.mean_x) / self.scale_x
        mu = self.mean_y + xs @ self.w
        var = self.noise * (1.0 + np.einsum("ij,jk,ik->i", xs, self.cov, xs))
        return mu, np.sqrt(var)


def features(genotypes: Sequence[Genotype], costs: Sequence[Mapping[str, float]], space: SearchSpace) -> np.ndarray:
    """One-hot choices of every searched field (placement counted for fp32 shortcuts only), plus
    log energy and log ops."""
    columns = [(name, value) for name, values in space.choices.items() for value in values if len(values) > 1]
    rows = []
    for g, c in zip(genotypes, costs, strict=True):
        params = space.params_of(g)
        row = [1.0 if params.get(name) == value else 0.0 for name, value in columns]
        row += [math.log(max(float(c["energy_uJ"]), 1e-9)), math.log(max(float(c["ops"]), 1.0))]
        rows.append(row)
    return np.array(rows, dtype=float)


# --------------------------------------------------------------------------- one proposal
class _RandomTrial:
    """Feeds :func:`space.sampling.sample` with seeded random choices (a genotype drawn uniformly
    per field, as random search would)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.rng.choice(list(choices))


def propose(study: optuna.Study, space: SearchSpace, config: ProposerConfig, cost: Callable[[Genotype], dict],
            ref_energy: float, rng: random.Random, max_energy: float | None = None,
            measured: Callable[[FrozenTrial], bool] = lambda t: True) -> tuple[Genotype, float] | None:
    """The candidate to train next and its expected hypervolume improvement, or None (too few
    finished trials, nothing new drawn, or the model cannot be fitted). ``cost``: the energy
    metrics of a genotype (search/objective.py ``Evaluator.energy``); ``measured``: which
    finished trials the model learns from (a multi-fidelity study: rung 0 only)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_feasible(t.user_attrs) and Attr.GENOTYPE in t.user_attrs and measured(t)]
    if len(done) < config.startup:
        return None
    known = {t.user_attrs.get(Attr.KEY, "").split("@")[0] for t in study.get_trials(deepcopy=False)}
    drawn: dict[str, Genotype] = {}
    for _ in range(config.candidates):
        g = sample(_RandomTrial(rng), space)
        if g.key() not in known:
            drawn.setdefault(g.key(), g)
    if not drawn:
        return None
    pool = list(drawn.values())
    costs = [cost(g) for g in pool]
    keep = [i for i, c in enumerate(costs) if max_energy is None or c["energy_uJ"] <= max_energy]
    if not keep:
        return None
    pool, costs = [pool[i] for i in keep], [costs[i] for i in keep]
    seen = [Genotype.from_dict(t.user_attrs[Attr.GENOTYPE]) for t in done]
    model = LinearModel(features(seen, [t.user_attrs for t in done], space),
                        np.array([float(t.user_attrs[Attr.ACCURACY]) for t in done]), config.ridge)
    mu, sigma = model.predict(features(pool, costs, space))
    points = feasible_points([t.user_attrs for t in done])
    gain = expected_hv_improvement(mu, sigma, np.array([c["energy_uJ"] for c in costs]), points, ref_energy)
    best = int(np.argmax(gain))
    return pool[best], float(gain[best])
