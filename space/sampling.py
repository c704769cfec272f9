"""Sampling: map a search-space config onto Optuna ``suggest_*`` calls and back.

A search space (conf/space/*.yaml) lists, per genotype field, the values the sampler may
pick. With ``per_stage: false`` one value is drawn per field and used by every stage; with
``per_stage: true`` each stage (stage transition, for ``downsample``) draws its own, as
parameters named ``<field>_s<stage>``. ``placement`` is only drawn for fp32-shortcut stages
(define-by-run), since binary stages ignore it.

optuna is not imported here at run time: the trial is any object with ``suggest_categorical``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boolnas.space.fields import BOOL, EXPECTED, field_value
from boolnas.space.genotype import (
    CHOICES,
    GLOBAL_FIELDS,
    MAX_BLOCKS,
    MAX_WIDTH_MULT,
    NUM_STAGES,
    PER_STAGE_FIELDS,
    PER_TRANSITION_FIELDS,
    Genotype,
)

if TYPE_CHECKING:
    import optuna

SEARCHABLE = (*PER_STAGE_FIELDS, *PER_TRANSITION_FIELDS, *GLOBAL_FIELDS)


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values per genotype field, validated, plus the per-stage switch."""

    choices: dict[str, tuple[Any, ...]]
    per_stage: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SearchSpace:
        """Validate a space config: every key known, every list non-empty and legal."""
        data = dict(cfg)
        per_stage = data.pop("per_stage", False)
        field_value(per_stage, "space field 'per_stage'", BOOL, template=EXPECTED)
        unknown = sorted(k for k in data if k not in SEARCHABLE)
        if unknown:
            raise ValueError(f"unknown space field(s) {unknown}; allowed fields: {sorted(SEARCHABLE)}")
        missing = sorted(k for k in SEARCHABLE if k not in data)
        if missing:
            raise ValueError(f"space config lacks field(s) {missing}: give each a list of allowed values")
        choices = {name: _validated_values(name, data[name]) for name in SEARCHABLE}
        return cls(choices=choices, per_stage=per_stage)

    def contains(self, genotype: Genotype) -> bool:
        """True when every choice of ``genotype`` is allowed (and uniform if not per_stage)."""
        if not self.per_stage and not genotype.is_uniform:
            return False
        canonical = genotype.canonical_dict()
        for name, allowed in self.choices.items():
            values = canonical[name] if isinstance(canonical[name], list) else [canonical[name]]
            if name == "placement":
                values = [p for p, s in zip(values, genotype.shortcut) if s == "fp32"]
            if any(v not in allowed for v in values):
                return False
        return True

    def params_of(self, genotype: Genotype) -> dict[str, Any]:
        """The Optuna parameters that make :func:`sample` return ``genotype`` (for enqueueing)."""
        if not self.contains(genotype):
            raise ValueError(f"genotype {genotype.to_dict()} is not a point of this search space")
        params: dict[str, Any] = {}
        for name in SEARCHABLE:
            value = getattr(genotype, name)
            if name in GLOBAL_FIELDS:
                params[name] = value
            elif self.per_stage:
                first = 2 if name in PER_TRANSITION_FIELDS else 1
                for i, v in enumerate(value):
                    if name == "placement" and genotype.shortcut[i] != "fp32":
                        continue
                    params[f"{name}_s{first + i}"] = v
            elif name != "placement" or "fp32" in genotype.shortcut:
                params[name] = value[0]
        return params


def sample(trial: optuna.Trial, space_cfg: Mapping[str, Any] | SearchSpace) -> Genotype:
    """Draw a Genotype from ``space_cfg`` with the trial's ``suggest_categorical``."""
    space = space_cfg if isinstance(space_cfg, SearchSpace) else SearchSpace.from_config(space_cfg)
    c = space.choices
    values: dict[str, Any] = {}
    for name in GLOBAL_FIELDS:
        values[name] = trial.suggest_categorical(name, list(c[name]))
    if space.per_stage:
        for name in (*PER_STAGE_FIELDS, *PER_TRANSITION_FIELDS):
            if name == "placement":
                continue
            first = 2 if name in PER_TRANSITION_FIELDS else 1
            n = NUM_STAGES - 1 if name in PER_TRANSITION_FIELDS else NUM_STAGES
            values[name] = [trial.suggest_categorical(f"{name}_s{first + i}", list(c[name])) for i in range(n)]
        values["placement"] = [
            trial.suggest_categorical(f"placement_s{i + 1}", list(c["placement"])) if s == "fp32" else "per_block"
            for i, s in enumerate(values["shortcut"])
        ]
    else:
        for name in (*PER_STAGE_FIELDS, *PER_TRANSITION_FIELDS):
            if name != "placement":
                values[name] = trial.suggest_categorical(name, list(c[name]))
        fp32 = values["shortcut"] == "fp32"
        values["placement"] = trial.suggest_categorical("placement", list(c["placement"])) if fp32 else "per_block"
    return Genotype.from_dict(values)


def enumerate_space(space_cfg: Mapping[str, Any] | SearchSpace) -> list[Genotype]:
    """Every distinct genotype of a finite space (``per_stage: false``), in a stable order.

    ``placement`` is enumerated for fp32 shortcuts only, so no two entries build the same
    network (distinct :meth:`Genotype.key`). Per-stage spaces are refused: their size is the
    fourth power of a uniform one's, far too many to tabulate.
    """
    space = space_cfg if isinstance(space_cfg, SearchSpace) else SearchSpace.from_config(space_cfg)
    if space.per_stage:
        raise ValueError("enumerate_space: only spaces with per_stage: false can be enumerated")
    names = [n for n in SEARCHABLE if n != "placement"]
    out: dict[str, Genotype] = {}
    for combo in itertools.product(*(space.choices[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        placements = space.choices["placement"] if values["shortcut"] == "fp32" else ("per_block",)
        for placement in placements:
            g = Genotype.from_dict({**values, "placement": placement})
            out.setdefault(g.key(), g)
    return list(out.values())


def _validated_values(name: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        values = [values]  # a single value fixes the field
    values = list(values)
    if not values:
        raise ValueError(f"space field '{name}': the list of allowed values is empty")
    for v in values:
        try:
            # Reuse the genotype's own validation, so the space and the genotype agree.
            Genotype.from_dict({name: v})
        except ValueError as exc:
            raise ValueError(f"space field '{name}': {exc}") from None
    if len(set(values)) != len(values):
        raise ValueError(f"space field '{name}': duplicate values in {values}")
    if name == "width_mult":
        return tuple(float(v) for v in values)
    return tuple(values)


__all__ = ["SearchSpace", "sample", "enumerate_space", "SEARCHABLE", "CHOICES", "MAX_BLOCKS", "MAX_WIDTH_MULT"]
