"""Imported first by the benchmarks: where boolnas is not installed (a bare GPU machine with only
this checkout, benchmarks/gpu_check.sh), the repository's folders become the ``boolnas``
namespace, as an installation maps them (space/ -> boolnas.space, ...). Installed, it does nothing."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("boolnas") is None:
    _namespace = types.ModuleType("boolnas")
    _namespace.__path__ = [str(REPO)]  # boolnas.space is REPO/space, boolnas.conf is REPO/conf, ...
    sys.modules["boolnas"] = _namespace
