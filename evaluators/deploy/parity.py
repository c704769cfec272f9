"""Parity of an exported network with the PyTorch network it came from, near-ties explained.

A binary network is a discontinuous function: a sign whose input lies within float rounding of
its threshold can come out differently in two runtimes that sum in different orders (oneDNN and
onnxruntime's MLAS do), and one flipped bit changes the logits of that image by far more than
rounding. So parity is checked image by image:

- images whose every binarizer output (every "decision map") is bit-identical must have the same
  argmax and logits within ``atol``;
- an image whose bits part is followed to the *first* decision map (in plan order) where they
  do; there, every differing bit must be a near-tie of the reference: ``|x + bias| <= near_tie *
  max(1, max |x + bias|)`` over that image's map. A wrong threshold, offset, BN fold or join flips
  bits far from their thresholds and fails this.

The reference is the network in eval mode; the candidate is anything that returns logits and
its decision maps by :func:`~evaluators.deploy.onnx_export.decision_name` (onnxruntime on a
model exported with ``expose_signs=True``, or the inference form in PyTorch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from boolnas.evaluators.deploy.inference import (
    BinarizeInference,
    ConvInference,
    InferenceNetwork,
    LASInference,
    decision_name,
    slice_bias,
)
from boolnas.space.builder import BinarizeLayer, ConvLayer, LASLayer, PlanNetwork

Candidate = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


@dataclass(frozen=True)
class Flip:
    """Where the bits of one image first part: the decision map, how many bits differ there, and
    the largest relative reference margin among them (a near-tie when tiny)."""

    image: int
    decision: str
    bits: int
    margin: float


@dataclass(frozen=True)
class ParityReport:
    images: int
    atol: float
    near_tie: float
    max_abs_diff: float  # over the images whose bits all agree
    argmax_mismatches: int  # among those images
    max_abs_diff_all: float  # over every image
    argmax_mismatches_all: int
    flips: tuple[Flip, ...]

    @property
    def unexplained(self) -> tuple[Flip, ...]:
        """Flips whose first differing bits are not near-ties of the reference."""
        return tuple(f for f in self.flips if not f.margin <= self.near_tie)

    @property
    def ok(self) -> bool:
        return self.argmax_mismatches == 0 and self.max_abs_diff <= self.atol and not self.unexplained

    def summary(self) -> str:
        clean = self.images - len(self.flips)
        text = f"{self.images} images; {clean} with identical bits"
        if clean:
            text += (f": argmax equal on {clean - self.argmax_mismatches}, max |logit difference| "
                     f"{self.max_abs_diff:.2g}")
        if self.flips:
            worst = max(f.margin for f in self.flips)
            text += (f"; {len(self.flips)} with flipped bits (argmax differs on {self.argmax_mismatches_all}, max "
                     f"|logit difference| {self.max_abs_diff_all:.2g}), each starting at a sign within {worst:.1e} "
                     "(relative) of its threshold, where float rounding decides")
            if self.unexplained:
                text += (f"; {len(self.unexplained)} NOT at a near-tie, the first at {self.unexplained[0].decision} "
                         f"(margin {self.unexplained[0].margin:.2g})")
        return text


# --------------------------------------------------------------------------- decision capture
def _quantizers(net: PlanNetwork) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for spec in net.plan:
        m = net.layer(spec.name)
        if isinstance(m, ConvLayer):
            if m.input_quantizer is not None:
                out[decision_name(spec.name, "in")] = m.input_quantizer
            if m.output_quantizer is not None:
                out[decision_name(spec.name, "out")] = m.output_quantizer
        elif isinstance(m, BinarizeLayer):
            out[decision_name(spec.name, "out")] = m.quantizer
        elif isinstance(m, LASLayer) and m.output_quantizer is not None:
            out[decision_name(spec.name, "out")] = m.output_quantizer
    return out


@contextmanager
def _capture(modules: dict[str, nn.Module], pre_sign: bool) -> Iterator[dict[str, tuple[Tensor, Tensor | None]]]:
    """Record each module's output (and, with ``pre_sign``, ``x + bias`` of a quantizer)."""
    seen: dict[str, tuple[Tensor, Tensor | None]] = {}

    def hook(name: str) -> Callable:
        def record(module: nn.Module, args: tuple, output: Tensor) -> None:
            t = None
            if pre_sign:
                bias = slice_bias(module, name)
                t = args[0].unsqueeze(1) + bias.view(1, bias.shape[0], bias.shape[1], 1, 1)
            seen[name] = (output.detach(), t)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def torch_candidate(inference: InferenceNetwork) -> Candidate:
    """The inference form in PyTorch as a parity candidate."""
    modules: dict[str, nn.Module] = {}
    for name, key, _taps, _free in inference.program:
        m = inference.layers[key]
        if isinstance(m, ConvInference):
            if m.in_sign is not None:
                modules[decision_name(name, "in")] = m.in_sign
            if m.out_sign is not None:
                modules[decision_name(name, "out")] = m.out_sign
        elif isinstance(m, BinarizeInference):
            modules[decision_name(name, "out")] = m.sign
        elif isinstance(m, LASInference) and m.out_sign is not None:
            modules[decision_name(name, "out")] = m.out_sign

    def run(images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with _capture(modules, pre_sign=False) as seen, torch.no_grad():
            logits = inference(images)
        return logits, {k: v[0] for k, v in seen.items()}

    return run


def onnx_candidate(model: Any, threads: int = 1) -> Candidate:
    """onnxruntime on ``model`` (a ModelProto or its bytes, exported with ``expose_signs=True`` to
    localize flipped bits) as a parity candidate."""
    from boolnas.evaluators.deploy.onnx_export import OUTPUT_NAME, onnx_session, run_session

    session = onnx_session(model, threads)

    def run(images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        out = run_session(session, images.numpy())
        logits = torch.from_numpy(out.pop(OUTPUT_NAME))
        return logits, {k: torch.from_numpy(v) for k, v in out.items()}

    return run


# --------------------------------------------------------------------------- comparison
def compare(reference: PlanNetwork, candidate: Candidate, images: Tensor, *, atol: float = 1e-3,
            near_tie: float = 1e-5, chunk: int = 32) -> ParityReport:
    """Run ``reference`` (eval mode) and ``candidate`` on ``images`` ``chunk`` at a time and
    compare them as the module docstring says."""
    was_training = reference.training
    reference.eval()
    quantizers = _quantizers(reference)
    order = [d for spec in reference.plan for d in (decision_name(spec.name, "in"), decision_name(spec.name, "out"))
             if d in quantizers]
    diffs: list[Tensor] = []
    argmax_equal: list[Tensor] = []
    flips: list[Flip] = []
    try:
        for start in range(0, images.shape[0], chunk):
            x = images[start:start + chunk]
            with _capture(quantizers, pre_sign=True) as seen, torch.no_grad():
                ref_logits = reference(x)
            logits, decisions = candidate(x)
            if set(decisions) and set(decisions) != set(order):
                missing = sorted(set(order) ^ set(decisions))
                raise ValueError(f"the candidate's binarizers differ from the network's: {missing[:4]}")
            diffs.append((logits.float() - ref_logits).abs().amax(1))
            argmax_equal.append(logits.argmax(1) == ref_logits.argmax(1))
            parted = torch.zeros(x.shape[0], dtype=torch.bool)
            for d in order if decisions else ():
                bits, t = seen[d]
                assert t is not None
                differ = (decisions[d] != bits).flatten(1)
                new = differ.any(1) & ~parted
                for i in new.nonzero().flatten().tolist():
                    ti = t[i].flatten()
                    scale = max(1.0, float(ti.abs().max()))
                    margin = float(ti[differ[i]].abs().max()) / scale
                    flips.append(Flip(start + i, d, int(differ[i].sum()), margin))
                parted |= new
            if not decisions:  # nothing to localize with: every mismatching image is unexplained
                bad = (diffs[-1] > atol) | ~argmax_equal[-1]
                flips.extend(Flip(start + i, "?", -1, float("inf")) for i in bad.nonzero().flatten().tolist())
    finally:
        reference.train(was_training)
    diff, same = torch.cat(diffs), torch.cat(argmax_equal)
    clean = torch.ones_like(same)
    for f in flips:
        clean[f.image] = False
    return ParityReport(
        images=int(images.shape[0]), atol=atol, near_tie=near_tie,
        max_abs_diff=float(diff[clean].max()) if bool(clean.any()) else 0.0,
        argmax_mismatches=int((~same & clean).sum()),
        max_abs_diff_all=float(diff.max()), argmax_mismatches_all=int((~same).sum()),
        flips=tuple(flips))


def random_images(n: int, channels: int, size: int, seed: int = 0) -> Tensor:
    """``n`` seeded standard-normal images (the networks take normalized inputs)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=g)


__all__ = ["Flip", "ParityReport", "compare", "onnx_candidate", "torch_candidate", "random_images"]
