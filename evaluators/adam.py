"""Adam on torch's fused CPU/CUDA kernel, without torch.optim's first-use import of torch._dynamo.

Every method of ``torch.optim.Optimizer`` is wrapped in ``torch._disable_dynamo``, whose first
call imports ``torch._dynamo``: 1.2-1.9 s on the 2-core CPU, about 5 % of the proxy budget's
30 s (and paid by every ``boolnas-train`` run). This optimizer runs the same aten kernel that
``torch.optim.Adam(fused=True)`` runs (``torch._fused_adam_``, step counters incremented first),
so its updates are bitwise identical (tests/test_adam.py). It keeps what the training loop and
its checkpoints use: ``param_groups`` with ``lr``, ``zero_grad``, ``step``, ``state_dict`` and
``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

AVAILABLE = hasattr(torch, "_fused_adam_")


class FusedAdam:
    """Adam (L2 weight decay, no amsgrad) over parameter groups ``[{"params": [...], "lr": x}]``."""

    def __init__(self, groups: Iterable[Mapping[str, Any]], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.param_groups: list[dict[str, Any]] = [{**g, "params": list(g["params"]), "lr": g.get("lr", lr)}
                                                   for g in groups]
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p) for p in params]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params, [p.grad for p in params], [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states], [], steps,
                amsgrad=False, lr=float(group["lr"]), beta1=self.betas[0], beta2=self.betas[1],
                weight_decay=self.weight_decay, eps=self.eps, maximize=False)

    def _state(self, p: Tensor) -> dict[str, Tensor]:
        if p not in self.state:
            # the step counter is a float tensor on the parameter's device, as fused Adam wants it
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[p]

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (checkpoints load with ``weights_only=True``)."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        params = self._params()
        groups = state["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("optimizer state does not match the model's parameter groups")
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {params[int(i)]: {k: v.to(params[int(i)].device) for k, v in s.items()}
                      for i, s in state["state"].items()}
