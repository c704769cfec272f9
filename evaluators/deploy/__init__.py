"""Deployment: a built network as standalone artifacts, and a bit-exact reference of its binary arithmetic.

- :func:`to_inference`: the inference form (explicit signs, +-1 weights, BatchNorm folded where exact);
- :func:`export_network`: ONNX (:mod:`~evaluators.deploy.onnx_export`) or TorchScript
  (:mod:`~evaluators.deploy.torchscript_export`), verified against PyTorch before it is written;
- :func:`compare`: parity of an exported network with the PyTorch one, flipped bits traced to near-ties;
- :func:`check_network`: the packed-bit (XNOR-popcount) reference of every binary conv, whose
  executed 1-bit MACs are compared with the plan's BOPs (the energy model's count).

Beside the builder's other consumers (not in the torch-free energy model); imports space/ only.
"""

from boolnas.evaluators.deploy.artifacts import (
    FORMATS,
    SUFFIXES,
    Verification,
    VerificationError,
    export_network,
    metadata,
)
from boolnas.evaluators.deploy.inference import DeployError, InferenceNetwork, to_inference
from boolnas.evaluators.deploy.packed_binary import ReferenceReport, binary_conv2d_packed, check_network
from boolnas.evaluators.deploy.parity import ParityReport, compare, onnx_candidate, random_images, torch_candidate

__all__ = [
    "FORMATS", "SUFFIXES", "Verification", "VerificationError", "export_network", "metadata", "DeployError",
    "InferenceNetwork", "to_inference", "ReferenceReport", "binary_conv2d_packed", "check_network", "ParityReport",
    "compare", "onnx_candidate", "random_images", "torch_candidate",
]
