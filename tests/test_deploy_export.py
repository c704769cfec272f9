"""Deployment export: ONNX and TorchScript keep the binary network's semantics and its outputs.

- Parity (every preset on two tasks, 20 random genotypes): onnxruntime against the PyTorch
  network in eval mode on 256 images. Images whose binarizer outputs are all bit-identical must
  have the same argmax and logits within 1e-3; an image whose bits part must do so first at a sign
  whose input was within float rounding of its threshold (see evaluators/deploy/parity.py: two
  runtimes that sum in different orders can decide such a near-tie differently).
- The graph keeps binary semantics: +-1 weights in binary convs, explicit GreaterOrEqual + Where
  signs, no Sign and no BatchNormalization node.
- The TorchScript program runs in a process that never imported boolnas.
- boolnas-export: fresh and trained weights, both formats, clean refusals of bad input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from deploy_cases import SMALL, cases, one_torch_thread, trained_like  # noqa: F401  (autouse fixture)
from onnx import numpy_helper

from boolnas.evaluators.accuracy import load_model, save_model
from boolnas.evaluators.deploy import compare, export_network, metadata, onnx_candidate, random_images, to_inference
from boolnas.evaluators.deploy.fold import integer_thresholds
from boolnas.evaluators.deploy.inference import SliceSign, ThresholdSign
from boolnas.evaluators.deploy.onnx_export import OUTPUT_NAME, run_onnx, to_onnx
from boolnas.evaluators.deploy.parity import torch_candidate
from boolnas.evaluators.deploy.torchscript_export import load_torchscript
from boolnas.space import Task, get_preset, make_plan
from boolnas.space.builder import build

REPO = Path(__file__).resolve().parents[1]
IMAGES = 256
MAX_FLIPPED_IMAGES = 4  # near-ties are rare: 0 or 1 image of 256 per network in our runs
CASES = cases()


def network(genotype, task: Task, seed: int = 0):
    torch.manual_seed(seed)
    return trained_like(build(make_plan(genotype, task)), seed)


# ----------------------------------------------------------------------------------- parity
@pytest.mark.parametrize(("name", "genotype", "task"), CASES, ids=[c[0] for c in CASES])
def test_onnxruntime_agrees_with_pytorch_on_256_images(name: str, genotype, task: Task) -> None:
    net = network(genotype, task)
    model = to_onnx(to_inference(net), expose_signs=True)
    report = compare(net, onnx_candidate(model), random_images(IMAGES, task.in_channels, task.input_size, seed=5))
    assert report.ok, report.summary()
    assert len(report.flips) <= MAX_FLIPPED_IMAGES, report.summary()

    # binary semantics in the graph
    ops = [n.op_type for n in model.graph.node]
    assert "Sign" not in ops and "BatchNormalization" not in ops
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    plan = net.plan
    for spec in plan:
        conv_weight = weights.get(f"{spec.name}/weight")
        if spec.is_binary_conv:
            assert conv_weight is not None and set(np.unique(conv_weight)) <= {-1.0, 1.0}, spec.name
    binarizers = sum(1 for s in plan for m in net.layer(s.name).modules()
                     if type(m).__name__ in ("MultiSliceSign", "RSign"))
    assert ops.count("Where") == binarizers


@pytest.mark.parametrize("corrupt", ["threshold", "slice_offset"])
def test_parity_check_catches_a_wrong_fold(corrupt: str) -> None:
    """The check is not vacuous: a threshold off by one step of S, or a sign's bias off by 0.01,
    flips bits that are not near-ties."""
    net = network(get_preset("reactnet18" if corrupt == "slice_offset" else "basenet18_k4"), SMALL)
    inference = to_inference(net)
    kind = ThresholdSign if corrupt == "threshold" else SliceSign
    target = next(m for m in inference.modules() if isinstance(m, kind))
    with torch.no_grad():
        if corrupt == "threshold":
            target.thresholds += 2  # S moves in steps of 2
        else:
            target.bias += 0.01
    report = compare(net, onnx_candidate(to_onnx(inference, expose_signs=True)),
                     random_images(64, 1, SMALL.input_size, seed=5))
    assert not report.ok and report.unexplained, report.summary()
    assert all(f.margin > 1e-3 for f in report.unexplained)


def test_folding_keeps_negative_bn_scales_and_exact_ties() -> None:
    # sign(alpha * scale * S + shift + bias) for S in -9..9, against the thresholds' [flip * S >= T]
    alpha = torch.tensor([0.5, 0.5, 0.25, 2.0])
    scale = torch.tensor([1.0, -1.0, 0.0, -3.0])
    shift = torch.tensor([1.0, 1.0, -0.5, 0.0])
    bias = torch.tensor([[0.0, 0.0, 0.0, 0.0], [-0.25, 0.5, 0.75, -1e-3]])
    flip, thresholds = integer_thresholds(alpha, scale, shift, bias)
    s = torch.arange(-9, 10, dtype=torch.float64).view(-1, 1, 1)
    exact = alpha.double() * scale.double() * s + shift.double() + bias.double()  # exact in float64 here
    expected = torch.where(exact >= 0, 1.0, -1.0)
    got = torch.where(s * flip.double() >= thresholds.double(), 1.0, -1.0)
    assert torch.equal(got, expected)
    assert flip.tolist() == [1.0, -1.0, 0.0, -1.0]
    assert thresholds[0, 0] == -2  # 0.5 * S + 1 >= 0 exactly from S = -2 on: the tie maps to +1


def test_trained_like_networks_fold_negative_scales_into_flips() -> None:
    """The parity cases exercise BN scales of both signs in the folded thresholds."""
    flips = torch.cat([m.flip.flatten() for m in to_inference(network(get_preset("basenet18_k4"), SMALL)).modules()
                       if isinstance(m, ThresholdSign)])
    assert (flips == 1).any() and (flips == -1).any()


# ----------------------------------------------------------------------------------- TorchScript
def test_torchscript_program_runs_without_boolnas(tmp_path: Path) -> None:
    images = random_images(IMAGES, 1, SMALL.input_size, seed=7)
    torch.save(images, tmp_path / "images.pt")
    expected = {}
    for name in ("bireal18", "boolnet18_k4_star"):  # fp32 shortcuts, RPReLU-free; LAS, reuse, dilation
        net = network(get_preset(name), SMALL)
        meta = metadata(name, net.plan.genotype, SMALL, "test", net.plan.totals())
        path, verification = export_network(net, "torchscript", tmp_path / f"{name}.torchscript.pt", meta,
                                            verify_images=16)
        assert verification is not None and verification.ok, verification.lines()
        report = compare(net, torch_candidate(to_inference(net)), images)
        assert report.ok, report.summary()
        with torch.no_grad():
            expected[name] = to_inference(net)(images)
    script = (
        "import json, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "x = torch.load(sys.argv[1])\n"
        "for name in ('bireal18', 'boolnet18_k4_star'):\n"
        "    extra = {'boolnas.json': ''}\n"
        "    program = torch.jit.load(f'{sys.argv[2]}/{name}.torchscript.pt', _extra_files=extra)\n"
        "    assert json.loads(extra['boolnas.json'])['boolnas.arch'] == name\n"
        "    with torch.no_grad():\n"
        "        torch.save(program(x), f'{sys.argv[2]}/{name}.out.pt')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('space', 'evaluators', 'search', 'boolnas'))\n"
        "print(json.dumps(loaded))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "images.pt"), str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    for name, want in expected.items():
        got = torch.load(tmp_path / f"{name}.out.pt")
        assert torch.equal(got.argmax(1), want.argmax(1)), name
        assert float((got - want).abs().max()) <= 1e-5, name


def test_torchscript_export_needs_no_onnx(tmp_path: Path) -> None:
    """onnx and onnxruntime are an optional extra ('boolnas[deploy]'): TorchScript works without them."""
    script = ("import sys\n"
              "from boolnas.evaluators.deploy import export_network, metadata\n"
              "from boolnas.space import get_preset, make_plan, Task\n"
              "from boolnas.space.builder import build\n"
              "task = Task(input_size=12, in_channels=1, num_classes=10, width_mult=0.25, stem='small')\n"
              "net = build(make_plan(get_preset('basenet18_k1'), task)).eval()\n"
              "meta = metadata('basenet18_k1', net.plan.genotype, task, 'fresh', net.plan.totals())\n"
              "export_network(net, 'torchscript', sys.argv[1], meta, verify_images=2)\n"
              "assert not any(m.split('.')[0] in ('onnx', 'onnxruntime') for m in sys.modules), 'onnx imported'\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "b.pt")], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b.pt").is_file()


def test_onnx_artifact_carries_its_metadata_and_a_free_batch_size(tmp_path: Path) -> None:
    net = network(get_preset("reactnet18"), SMALL)
    meta = metadata("reactnet18", net.plan.genotype, SMALL, "test", net.plan.totals())
    path, verification = export_network(net, "onnx", tmp_path / "r.onnx", meta, verify_images=8)
    assert verification is not None and verification.ok
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["boolnas.arch"] == "reactnet18"
    assert json.loads(props["boolnas.genotype"]) == net.plan.genotype.to_dict()
    assert json.loads(props["boolnas.ops"])["bops"] == net.plan.totals()["bops"]
    for n in (1, 3):
        x = random_images(n, 1, SMALL.input_size, seed=n)
        y = run_onnx(path, x.numpy())[OUTPUT_NAME]
        with torch.no_grad():
            assert y.shape == (n, 10) and np.abs(y - net(x).numpy()).max() <= 1e-3


# ----------------------------------------------------------------------------------- the CLI
def run_export(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = Path(sys.executable).parent / "boolnas-export"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "boolnas.search.cli.export"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_cli_exports_fresh_weights_as_onnx(tmp_path: Path) -> None:
    out = run_export("arch=basenet18_k4", "task=fashion_mnist", "task.width_mult=0.25", "verify_images=4",
                     cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    path = tmp_path / out.stdout.strip()
    key = get_preset("basenet18_k4").key()
    assert path == tmp_path / "results" / "deploy" / f"basenet18_k4-{key}.onnx" and path.is_file()
    assert "parity with PyTorch: 4 images" in out.stderr and "= the plan's BOPs" in out.stderr
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["boolnas.weights"] == "fresh (seed 0)"
    assert json.loads(props["boolnas.task"])["input_size"] == 28
    y = run_onnx(path, np.zeros((2, 1, 28, 28), np.float32))[OUTPUT_NAME]
    assert y.shape == (2, 10)


def test_cli_exports_a_trained_model_as_torchscript_beside_it(tmp_path: Path) -> None:
    genotype = get_preset("boolnet18_k4")
    net = network(genotype, SMALL, seed=3)
    run_dir = tmp_path / "results" / "train" / f"boolnet18_k4-{genotype.key()}"
    save_model(run_dir / "model.pt", net, genotype, SMALL, {"accuracy": 0.5})
    out = run_export(f"weights={run_dir / 'model.pt'}", "arch=boolnet18_k4", "format=torchscript",
                     "verify_images=16", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path == run_dir / "model.torchscript.pt"
    program, meta = load_torchscript(path)
    assert meta["boolnas.arch"] == "boolnet18_k4" and meta["boolnas.weights"].startswith("trained: ")
    trained = load_model(run_dir / "model.pt")
    images = random_images(IMAGES, 1, SMALL.input_size, seed=11)
    inference = to_inference(trained)
    with torch.no_grad():
        got, want = program(images), inference(images)
    assert torch.equal(got.argmax(1), want.argmax(1)) and float((got - want).abs().max()) <= 1e-5
    report = compare(trained, torch_candidate(inference), images)
    assert report.ok and len(report.flips) <= MAX_FLIPPED_IMAGES, report.summary()


@pytest.fixture()
def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator:
    """Run ``boolnas-export`` in this process (bad input exits before any heavy work)."""
    from boolnas.search.cli import export as export_cli

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["boolnas-export", *args])
        with pytest.raises(SystemExit) as exit_info:
            export_cli.main()
        return int(exit_info.value.code or 0)

    yield run
    for s, handler in saved.items():
        signal.signal(s, handler)


BAD = [
    ((), "nothing to export"),
    (("study=demo", "arch=bireal18"), "not both"),
    (("study=demo", "format=torchscript"), "format= applies to arch= / weights="),
    (("arch=bireal18", "top_k=2"), "top_k= applies to study="),
    (("arch=bireal18", "format=tflite"), "format='tflite' is unknown"),
    (("arch=bireal18", "verify_images=0"), "verify_images must be a positive integer"),
    (("arch=nosuchnet",), "unknown preset 'nosuchnet'"),
    (("weights=missing/model.pt",), "does not exist"),
    (("weights=missing/model.pt", "task=cifar10"), "carries its own task"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_cli_refuses_bad_input_with_one_line(in_process, capsys: pytest.CaptureFixture, args: tuple[str, ...],
                                             message: str, tmp_path: Path) -> None:
    code = in_process(*args)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_cli_refuses_weights_of_another_architecture(in_process, capsys: pytest.CaptureFixture,
                                                     tmp_path: Path) -> None:
    genotype = get_preset("basenet18_k1")
    save_model(tmp_path / "m" / "model.pt", network(genotype, SMALL), genotype, SMALL, {})
    code = in_process(f"weights={tmp_path / 'm' / 'model.pt'}", "arch=bireal18")
    err = capsys.readouterr().err
    assert code == 2 and "holds architecture" in err and "drop arch=" in err, err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.pt"]
