"""Deployment artifacts of a built network: ONNX or TorchScript, verified before they are written.

:func:`export_network` puts the network in inference form, serializes it, and (``verify_images``
> 0) checks the serialized bytes before writing them atomically:

- parity with the PyTorch network on random images (:mod:`evaluators.deploy.parity`: images with
  identical bits agree in argmax and within 1e-3 in logits; every flipped bit starts at a sign
  within float rounding of its threshold);
- the packed-bit reference (:mod:`evaluators.deploy.packed_binary`) on one image: every binary
  conv's XNOR-popcount sums equal the float simulation's, and the 1-bit MACs it executes equal
  the plan's BOPs, the count the energy model costs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from boolnas.evaluators.deploy.inference import InferenceNetwork, to_inference
from boolnas.evaluators.deploy.packed_binary import ReferenceReport, check_network
from boolnas.evaluators.deploy.parity import ParityReport, compare, onnx_candidate, random_images, torch_candidate
from boolnas.evaluators.deploy.torchscript_export import load_torchscript, save_bytes, to_torchscript, torchscript_bytes
from boolnas.space.builder import PlanNetwork
from boolnas.space.fields import one_of
from boolnas.space.genotype import Genotype
from boolnas.space.task import Task

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT_NOTE = ("float32 images (N, C, H, W), normalized as boolnas-train normalizes its data "
              "(evaluators/data.py NORMALIZATION)")


class VerificationError(RuntimeError):
    """The serialized network disagrees with the PyTorch network it came from."""


@dataclass(frozen=True)
class Verification:
    parity: ParityReport
    reference: ReferenceReport
    plan_bops: int
    artifact_diff: float  # the artifact's logits against the run used for parity (same graph)

    @property
    def ok(self) -> bool:
        return (self.parity.ok and self.reference.exact and self.reference.bops == self.plan_bops
                and all(c.bops == c.plan_bops for c in self.reference.layers) and self.artifact_diff <= 1e-5)

    def lines(self) -> list[str]:
        ref = self.reference
        bops = ("= the plan's BOPs (the energy model's count)" if ref.bops == self.plan_bops
                else f"!= the plan's {self.plan_bops:,} BOPs")
        return [f"parity with PyTorch: {self.parity.summary()}",
                f"packed-bit reference: {ref.summary()} {bops}"]


def metadata(name: str, genotype: Genotype, task: Task, weights: str, plan_totals: Mapping[str, Any]) -> dict[str, Any]:
    """What an artifact says about itself (ONNX metadata_props / TorchScript boolnas.json)."""
    return {"boolnas.arch": name, "boolnas.key": genotype.key(), "boolnas.genotype": genotype.to_dict(),
            "boolnas.task": task.to_dict(), "boolnas.weights": weights, "boolnas.input": INPUT_NOTE,
            "boolnas.output": f"float32 logits (N, {task.num_classes})",
            "boolnas.ops": {k: plan_totals[k] for k in ("bops", "flops", "ops")}}


def _verify(net: PlanNetwork, inference: InferenceNetwork, fmt: str, data: bytes, images: torch.Tensor,
            chunk: int) -> Verification:
    x1 = images[:1]
    if fmt == "onnx":
        from boolnas.evaluators.deploy.onnx_export import OUTPUT_NAME, run_onnx, to_onnx

        exposed = onnx_candidate(to_onnx(inference, expose_signs=True))
        parity = compare(net, exposed, images, chunk=chunk)
        artifact = torch.from_numpy(run_onnx(data, images[:chunk].numpy())[OUTPUT_NAME])
        reference_logits = exposed(images[:chunk])[0]
    else:
        parity = compare(net, torch_candidate(inference), images, chunk=chunk)
        program, _ = load_torchscript(data)
        with torch.no_grad():
            artifact = program(images[:chunk])
            reference_logits = inference(images[:chunk])
    diff = float((artifact - reference_logits).abs().max())
    return Verification(parity, check_network(net, x1), net.plan.totals()["bops"], diff)


def export_network(net: PlanNetwork, fmt: str, path: str | Path, meta: Mapping[str, Any], *,
                   verify_images: int = 0, seed: int = 0, chunk: int = 4) -> tuple[Path, Verification | None]:
    """Write ``net`` (its current weights, eval mode) as ``fmt`` to ``path``; verified first when
    ``verify_images`` > 0 (a :class:`VerificationError` leaves nothing written)."""
    one_of(fmt, "format", FORMATS)
    inference = to_inference(net)
    if fmt == "onnx":
        from boolnas.evaluators.deploy.onnx_export import to_onnx

        data = to_onnx(inference, meta).SerializeToString()
    else:
        data = torchscript_bytes(to_torchscript(inference), meta)
    verification = None
    if verify_images > 0:
        t = net.plan.task
        images = random_images(verify_images, t.in_channels, t.input_size, seed)
        verification = _verify(net, inference, fmt, data, images, chunk)
        for line in verification.lines():
            log.info("%s", line)
        if not verification.ok:
            raise VerificationError(f"the exported network disagrees with PyTorch: {'; '.join(verification.lines())}; "
                                    "nothing written (verify=false writes it anyway)")
    return save_bytes(data, path), verification
