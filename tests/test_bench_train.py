"""benchmarks/bench_train.py: the fp32 twin has the plan's shape, the benchmark runs and reports,
and the modules it needs import on a machine without the search stack (a bare GPU box)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from boolnas.evaluators.fp32_twin import BasicBlock, fp32_twin
from boolnas.space import PRESETS, Task, get_preset, make_plan

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

PROXY = Task(input_size=14, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
IMAGENET_SMALL = Task(input_size=64, in_channels=3, num_classes=100, width_mult=0.25, stem="imagenet")


@pytest.mark.parametrize("task", [PROXY, IMAGENET_SMALL], ids=["proxy", "imagenet-stem"])
@pytest.mark.parametrize("preset", PRESETS)
def test_fp32_twin_has_the_widths_depth_and_strides_of_the_plan(preset: str, task: Task) -> None:
    plan = make_plan(get_preset(preset), task)
    twin = fp32_twin(plan)
    stem, fc = plan["stem.conv"], plan["head.fc"]
    assert twin[0].weight.shape == (stem.c_out, stem.c_in, stem.kernel, stem.kernel)
    assert twin[-1].weight.shape == (fc.c_out, fc.c_in)
    blocks = [m for m in twin if isinstance(m, BasicBlock)]
    conv1 = [s for s in plan if s.role == "conv1"]
    conv2 = [s for s in plan if s.role == "conv2"]
    assert len(blocks) == len(conv1) == len(conv2) == sum(plan.genotype.blocks)
    c_prev = stem.c_out
    for block, s1, s2 in zip(blocks, conv1, conv2, strict=True):
        assert block.conv1.weight.shape == (s1.c_out, c_prev, 3, 3)
        assert block.conv2.weight.shape == (s2.c_out, s1.c_out, 3, 3)
        assert (block.conv1.stride[0], block.conv1.dilation[0]) == (s1.stride, s1.dilation)
        assert block.conv2.dilation[0] == s2.dilation
        c_prev = s2.c_out
    assert all(b.conv1.out_channels == plan.widths[s.stage - 1] for b, s in zip(blocks, conv1, strict=True))
    # An ordinary fp32 network: zero-padded real convs, no quantizers.
    convs = [m for m in twin.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.padding_mode == "zeros" and type(m) is nn.Conv2d for m in convs)
    # Every block's output has the spatial size of the plan's block output.
    sizes: list[int] = []
    for block in blocks:
        block.register_forward_hook(lambda m, a, out: sizes.append(out.shape[-1]))
    out = twin(torch.randn(2, task.in_channels, task.input_size, task.input_size))
    assert out.shape == (2, task.num_classes)
    assert sizes == [s.h_out for s in conv2]


def test_bench_train_reports_a_ratio_per_preset(capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run (1 round of 1 step, tiny batch): the table and the JSON summary; no timing asserted."""
    import bench_train

    summary = bench_train.main(["--presets", "basenet18_k1", "boolnet18_k4", "--rounds", "1", "--steps", "1",
                                "--warmup", "1", "--batch-size", "4"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(summary))
    assert [r["preset"] for r in summary["rows"]] == ["basenet18_k1", "boolnet18_k4"]
    for row in summary["rows"]:
        assert row["binary_img_s"] > 0 and row["fp32_img_s"] > 0 and row["ratio"] > 0
        assert row["meets_target"] == (row["ratio"] >= summary["target"])


def test_bench_budget_parser_without_pyyaml_matches_yaml() -> None:
    import bench_train
    import yaml

    path = REPO / "conf" / "budget" / "proxy.yaml"
    parsed = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            parsed[key.strip()] = bench_train._scalar(value)
    assert parsed == yaml.safe_load(path.read_text())


BLOCKED = ("optuna", "hydra", "omegaconf", "plotly", "sqlalchemy")
IMPORTS = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + " is hidden (a bare GPU machine)")
        return None
sys.meta_path.insert(0, _Hide())
sys.path.insert(0, "benchmarks")
import _checkout  # boolnas from this checkout where it is not installed, as gpu_check.sh does
import boolnas.space, boolnas.evaluators.training, boolnas.evaluators.accuracy, boolnas.evaluators.data
import boolnas.evaluators.zero_cost, boolnas.evaluators.fp32_twin, boolnas.evaluators.two_step
import boolnas.evaluators.distributed, boolnas.evaluators.batches
from boolnas.space.builder import build
import bench_train
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})
assert not loaded, loaded
print("imports ok")
"""


def test_training_stack_imports_without_the_search_packages() -> None:
    """space/, evaluators' training modules and the benchmark import with optuna, hydra,
    omegaconf, plotly and sqlalchemy hidden (gpu_check.sh runs where they are not installed)."""
    code = IMPORTS.format(blocked=set(BLOCKED))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "imports ok" in out.stdout


def test_the_blocker_does_hide_a_package() -> None:
    """The import check above is not vacuous: the same blocker makes importing hydra fail."""
    code = IMPORTS.format(blocked=set(BLOCKED)).split("import boolnas.space")[0] + "import hydra\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "hidden" in out.stderr
