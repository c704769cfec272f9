"""TorchScript export of an :class:`~evaluators.deploy.inference.InferenceNetwork`.

The program is traced (the network's structure is static: no data-dependent control flow), so it
runs with ``torch.jit.load`` alone, in a process that never imports boolnas; the batch size is
free. The boolnas metadata travels inside the file as ``boolnas.json`` (read it back with
``torch.jit.load(path, _extra_files={"boolnas.json": ""})``).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from boolnas.evaluators.deploy.inference import InferenceNetwork
from boolnas.space.files import write_atomic

METADATA_FILE = "boolnas.json"


@contextmanager
def _quiet_deprecation() -> Iterator[None]:
    """torch >= 2.9 marks torch.jit as deprecated in favour of torch.export; TorchScript is still
    what C++ (libtorch) and mobile runtimes load, so the warning is noise for this export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.", category=DeprecationWarning)
        yield


def to_torchscript(net: InferenceNetwork, batch: int = 2) -> torch.jit.ScriptModule:
    """Trace ``net`` on a zero batch of its task's images."""
    t = net.plan.task
    example = torch.zeros(batch, t.in_channels, t.input_size, t.input_size)
    with _quiet_deprecation(), torch.no_grad():
        return torch.jit.trace(net, example, check_trace=False)


def torchscript_bytes(program: torch.jit.ScriptModule, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The file content of ``program`` with ``metadata`` as ``boolnas.json``."""
    buffer = io.BytesIO()
    with _quiet_deprecation():
        torch.jit.save(program, buffer, _extra_files={METADATA_FILE: json.dumps(dict(metadata or {}), indent=1)})
    return buffer.getvalue()


def load_torchscript(data: bytes | str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """A saved program and its metadata."""
    extra = {METADATA_FILE: ""}
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with _quiet_deprecation():
        program = torch.jit.load(source, map_location="cpu", _extra_files=extra)
    return program, json.loads(extra[METADATA_FILE] or "{}")


def save_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))
