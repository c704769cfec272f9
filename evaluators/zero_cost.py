"""Zero-cost proxies: scores of an untrained network from one batch, as extra candidate metrics.

- ``naswot`` (Mellor et al. 2021): log-determinant of the kernel of binary activation codes,
  K[i, j] = number of units where images i and j have the same code. BNNs produce these codes
  anyway: every binary map of the plan is one, and so is every operand a conv binarizes on the
  fly from a 32-bit map (the only codes of Bi-Real / ReActNet, whose maps between layers are real).
- ``grad_norm``: sum of the L2 norms of the loss gradients at initialization.
- ``snip`` (Lee et al. 2019): sum of |weight x gradient| at initialization.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from boolnas.space.builder import PlanNetwork

ZERO_COST_METRICS = ("zc_naswot", "zc_grad_norm", "zc_snip")


def naswot(model: PlanNetwork, x: Tensor) -> float:
    """log|K| of the Hamming-agreement kernel over all binary maps of the plan."""
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)
    handles = []

    def accumulate(_module: object, _inputs: object, out: Tensor) -> None:
        codes = (out.detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T).add_((1 - codes) @ (1 - codes).T)

    for spec in model.plan:
        layer = model.layer(spec.name)
        if spec.out_bits == 1:
            handles.append(layer.register_forward_hook(accumulate))
        quantizer = getattr(layer, "input_quantizer", None)  # a real source binarized for the conv
        if quantizer is not None:
            handles.append(quantizer.register_forward_hook(accumulate))
    try:
        with torch.no_grad():
            model.train()
            model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def gradient_scores(model: PlanNetwork, x: Tensor, y: Tensor) -> tuple[float, float]:
    """(grad_norm, snip) from one cross-entropy backward at initialization."""
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    grad_norm = snip = 0.0
    for p in model.parameters():
        if p.grad is not None:
            grad_norm += float(p.grad.norm())
            snip += float((p.detach() * p.grad).abs().sum())
    model.zero_grad(set_to_none=True)
    return grad_norm, snip


def zero_cost_scores(model: PlanNetwork, x: Tensor, y: Tensor) -> dict[str, float]:
    """All zero-cost proxies of an untrained ``model`` on the batch ``x``, ``y``."""
    grad_norm, snip = gradient_scores(model, x, y)
    return {"zc_naswot": naswot(model, x), "zc_grad_norm": grad_norm, "zc_snip": snip}
