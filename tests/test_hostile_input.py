"""Hostile and mistaken input: every boolnas command line refuses it cleanly.

Each case of :data:`CASES` runs a real console entry point (``search.<cli>:main``) in its own
process, in an empty working directory, and must exit with the documented code (2), print
``error: ...`` with the key words of the message on stderr, show no traceback and leave no
file behind. docs/errors.md ("Bad input: what you see") lists exactly these cases.

Starting Python and importing torch, Hydra and Optuna costs ~2.5 s per process, so the cases of
one command run as forks of one process that has imported the command's module: each fork sets
``sys.argv``, enters the empty working directory and calls ``main()`` at the top level of a
script, so exit codes, stderr and tracebacks are the interpreter's own.
:func:`test_forked_run_matches_the_console_script` checks that against the console script.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
MODULES = {name: f"boolnas.search.cli.{name}" for name in ("plan", "energy", "train", "search", "report", "export")}
# Small, fast data and training for the train / search cases that get past their first check.
SYNTHETIC = "data=synthetic"  # search cases: no dependence on the Fashion-MNIST install
SYNTH = ["data=synthetic", "data.num_train=64", "data.val_size=16", "data.num_test=16", "progress=false"]
TEACHER = [*SYNTH, "arch=basenet18_k1", "budget=tiny"]  # the student is built before the teacher loads


@dataclass(frozen=True)
class Case:
    """One bad input: the command, its arguments (``{in}`` is the inputs folder) and what it prints."""

    id: str
    cli: str
    args: tuple[str, ...]
    expect: tuple[str, ...]  # substrings of stderr
    doc: str  # the example as docs/errors.md shows it
    code: int = 2
    group: str = ""  # the docs/errors.md table's first column


def case(id: str, cli: str, args: str | tuple[str, ...], expect: str | tuple[str, ...], doc: str,
         code: int = 2) -> Case:
    args = (args,) if isinstance(args, str) else args
    expect = (expect,) if isinstance(expect, str) else expect
    return Case(id, cli, tuple(args), tuple(expect), doc, code)


def group(name: str, cases: list[Case]) -> list[Case]:
    return [replace(c, group=name) for c in cases]


OVERRIDES = group("override", [
    case("plan-unknown-task", "plan", "task=foo", ("task='foo' is unknown", "imagenet"),
         "boolnas-plan task=foo"),
    case("energy-unknown-profile", "energy", "energy=foo", ("energy='foo' is unknown", "boolnet65nm"),
         "boolnas-energy energy=foo"),
    case("train-unknown-budget", "train", "budget=huge", ("budget='huge' is unknown", "proxy"),
         "boolnas-train budget=huge"),
    case("report-unknown-storage", "report", ("study=demo", "storage=redis"), ("storage='redis' is unknown",),
         "boolnas-report study=demo storage=redis"),
    case("search-unknown-sampler", "search", (SYNTHETIC, "sampler=foo"), ("sampler='foo' is unknown", "nsga2"),
         "boolnas-search sampler=foo"),
    case("plan-unknown-key", "plan", "arhc=bireal18", ("unknown key 'arhc'", "arch"),
         "boolnas-plan arhc=bireal18"),
    case("train-unknown-nested-key", "train", "budget.learning_rate=0.1",
         ("unknown key 'budget.learning_rate'", "lr"), "boolnas-train budget.learning_rate=0.1"),
    case("energy-group-of-another-command", "energy", "budget=tiny", ("'budget' is not a setting",),
         "boolnas-energy budget=tiny"),
    case("plan-added-key", "plan", ("arch=bireal18", "+foo=3"), ("unknown key 'foo' in '+foo=3'", "never reads"),
         "boolnas-plan +foo=3"),
    case("train-added-nested-key", "train", (*SYNTH, "++budget.epochz=3"),
         ("unknown key 'budget.epochz'", "never reads", "epochs"), "boolnas-train ++budget.epochz=3"),
    case("plan-unparsable", "plan", "arch=[bireal18", ("cannot parse the override 'arch=[bireal18'",),
         "boolnas-plan arch=[bireal18"),
    case("plan-bad-interpolation", "plan", "arch=${nope}", ("bad override", "nope"),
         "boolnas-plan 'arch=${nope}'"),
    case("plan-bad-format", "plan", "format=xml", ("format='xml' is not supported",),
         "boolnas-plan format=xml"),
    case("plan-task-type", "plan", "task.input_size=big", ("task field 'input_size'", "positive integer"),
         "boolnas-plan task.input_size=big"),
    case("energy-task-nan", "energy", "task.width_mult=nan", ("task field 'width_mult'", "positive number", "nan"),
         "boolnas-energy task.width_mult=nan"),
    case("search-constraint-nan", "search", (SYNTHETIC, "constraints.max_energy_uJ=nan"),
         ("constraints.max_energy_uJ", "a positive number or null", "nan"), "boolnas-search constraints.max_energy_uJ=nan"),
    case("train-lr-type", "train", (*SYNTH, "budget.lr=fast"), ("budget.lr must be a positive number",),
         "boolnas-train budget.lr=fast"),
    case("train-warmup-type", "train", (*SYNTH, "budget.warmup=some"), ("budget.warmup must be a number in [0, 1)",),
         "boolnas-train budget.warmup=some"),
    case("train-flag-type", "train", (*SYNTH, "budget.channels_last=maybe"),
         ("budget.channels_last must be true or false",), "boolnas-train budget.channels_last=maybe"),
    case("train-negative-seed", "train", (*SYNTH, "seed=-1"), ("seed must be a non-negative integer",),
         "boolnas-train seed=-1"),
    case("train-zero-classes", "train", (*SYNTH, "data.num_classes=0"), ("data.num_classes must be a positive",),
         "boolnas-train data=synthetic data.num_classes=0"),
    case("train-run-dir-file", "train", (*SYNTH, "budget=full", "run_dir={in}/empty.yaml"), ("is a file",),
         "boolnas-train budget=full run_dir=a_file"),
    case("search-negative-trials", "search", (SYNTHETIC, "n_trials=-3"), ("n_trials must be a positive integer",),
         "boolnas-search n_trials=-3"),
    case("search-space-value", "search", (SYNTHETIC, "space.slices=[3]"), ("space field 'slices'", "[1, 2, 4, 8]"),
         "boolnas-search space.slices=[3]"),
    case("search-unknown-preset", "search", (SYNTHETIC, "seed_presets=[resnet50]"), ("unknown preset 'resnet50'",),
         "boolnas-search seed_presets=[resnet50]"),
    case("search-profile-type", "search", (SYNTHETIC, "energy.dram.access_pj=lots"),
         ("energy profile key 'dram.access_pj'", "expected a number"), "boolnas-search energy.dram.access_pj=lots"),
    case("export-top-k", "export", ("study=demo", "top_k=0"), ("top_k must be a positive integer",),
         "boolnas-export study=demo top_k=0"),
    case("export-select", "export", ("study=demo", "select=best"), ("select='best' is unknown", "knee"),
         "boolnas-export study=demo select=best"),
    case("report-no-study-name", "report", (), ("study=<name> is required",), "boolnas-report"),
    case("report-path-as-study", "report", "study=../demo", ("not a valid study name",),
         "boolnas-report study=../demo"),
    case("report-missing-study", "report", "study=nope", ("no study 'nope'", "boolnas-search study=nope"),
         "boolnas-report study=nope"),
    case("export-study-without-storage", "export", ("study=demo", "results_dir={in}/results"),
         ("no study 'demo'", "holds no study.db", "storage=journal"),
         "boolnas-export study=demo (results/demo/ has no study.db)"),
])
ARCH_FILES = group("arch file", [
    case("arch-missing", "plan", "arch={in}/absent.yaml", ("arch file", "does not exist"),
         "boolnas-plan arch=absent.yaml"),
    case("arch-directory", "plan", "arch={in}/folder.yaml", ("is a directory",), "boolnas-plan arch=folder.yaml/"),
    case("arch-empty", "plan", "arch={in}/empty.yaml", ("is empty",), "boolnas-plan arch=empty.yaml"),
    case("arch-not-mapping", "energy", "arch={in}/list.yaml", ("must hold a mapping", "got list"),
         "boolnas-energy arch=list.yaml (a YAML list)"),
    case("arch-field-type", "train", (*SYNTH, "arch={in}/slices_word.yaml"),
         ("genotype field 'slices'", "allowed values: [1, 2, 4, 8]"), "boolnas-train arch=a.yaml (slices: four)"),
    case("arch-out-of-range", "plan", "arch={in}/blocks9.yaml",
         ("genotype field 'blocks'", "outside the allowed range 1..8"), "boolnas-plan arch=a.yaml (blocks: 9)"),
    case("arch-unknown-field", "plan", "arch={in}/depth.yaml", ("unknown genotype field(s) ['depth']",),
         "boolnas-plan arch=a.yaml (depth: 3)"),
    case("arch-python-tag", "plan", "arch={in}/tag.yaml", ("not valid YAML", "python/object/apply:os.system",
                                                            "Python tags are refused"),
         "boolnas-plan arch=a.yaml (!!python/object/apply:os.system [...])"),
    case("arch-huge", "plan", "arch={in}/huge.yaml", ("over the limit of 1,048,576 bytes",),
         "boolnas-plan arch=huge.yaml (2 MiB)"),
    case("arch-binary", "plan", "arch={in}/garbage.yaml", ("is not UTF-8 text",), "boolnas-plan arch=garbage.yaml"),
    case("arch-nested", "plan", "arch={in}/nested.yaml", ("nested too deeply",),
         "boolnas-plan arch=a.yaml ([[[[... 5000 deep)"),
    case("arch-unknown-preset", "plan", "arch=resnet50", ("unknown preset 'resnet50'", "bireal18"),
         "boolnas-plan arch=resnet50"),
    case("search-bad-seed-arch", "search", (SYNTHETIC, "seed_presets=[{in}/blocks9.yaml]"),
         ("genotype field 'blocks'",),
         "boolnas-search seed_presets=[a.yaml] (blocks: 9)"),
])
PROFILES = group("hardware profile", [
    case("profile-negative", "energy", ("arch=bireal18", "energy_file={in}/negative.yaml"),
         ("energy profile key 'sram.fm_buffer_kib'", "must be finite and >= 0"),
         "boolnas-energy energy_file=p.yaml (fm_buffer_kib: -1)"),
    case("profile-missing-key", "energy", ("arch=bireal18", "energy_file={in}/no_dram.yaml"),
         ("energy profile key 'dram' is missing",), "boolnas-energy energy_file=p.yaml (no dram:)"),
    case("profile-string", "energy", ("arch=bireal18", "energy_file={in}/string.yaml"),
         ("energy profile key 'compute.clock_ghz'", "expected a number", "'fast'"),
         "boolnas-energy energy_file=p.yaml (clock_ghz: fast)"),
    case("profile-python-tag", "energy", ("arch=bireal18", "energy_file={in}/tag.yaml"),
         ("not valid YAML", "Python tags are refused"), "boolnas-energy energy_file=p.yaml (a !!python tag)"),
    case("profile-empty", "energy", ("arch=bireal18", "energy_file={in}/empty.yaml"), ("is empty",),
         "boolnas-energy energy_file=empty.yaml"),
    case("profile-directory", "energy", ("arch=bireal18", "energy_file={in}/folder.yaml"), ("is a directory",),
         "boolnas-energy energy_file=folder.yaml/"),
    case("profile-binary", "energy", ("arch=bireal18", "energy_file={in}/garbage.yaml"), ("is not UTF-8 text",),
         "boolnas-energy energy_file=garbage.yaml"),
    case("profile-device", "energy", ("arch=bireal18", "energy_file=/dev/zero"), ("is not a regular file",),
         "boolnas-energy energy_file=/dev/zero"),
    case("profile-override", "energy", ("arch=bireal18", "energy.compute.clock_ghz=0"),
         ("energy profile key 'compute.clock_ghz'", "must be finite and > 0"),
         "boolnas-energy energy.compute.clock_ghz=0"),
    case("energy-chart-directory", "energy", ("arch=all", "chart={in}"), ("is a directory",),
         "boolnas-energy arch=all chart=some/folder"),
])
DATASETS = group("dataset", [
    case("data-missing-dir", "train", ("data.root={in}/nowhere", "progress=false"),
         ("does not exist", "dataset-fashion-mnist"), "boolnas-train data.root=nowhere/"),
    case("data-root-is-file", "train", ("data.root={in}/empty.yaml", "progress=false"),
         ("is a file, not a directory",), "boolnas-train data.root=a_file"),
    case("data-missing-files", "train", ("data.root={in}/fmnist_partial", "progress=false"),
         ("missing file t10k-labels-idx1-ubyte[.gz]",), "boolnas-train data.root=dir/ (3 of the 4 files)"),
    case("data-truncated-idx", "train", ("data.root={in}/fmnist_truncated", "progress=false"),
         ("truncated or corrupt", "train-images-idx3-ubyte"), "boolnas-train data.root=dir/ (truncated images)"),
    case("data-bad-gzip", "train", ("data.root={in}/fmnist_badgz", "progress=false"),
         ("train-images-idx3-ubyte.gz", "truncated or corrupt"),
         "boolnas-train data.root=dir/ (corrupt .gz)"),
    case("data-wrong-magic", "train", ("data.root={in}/fmnist_magic", "progress=false"), ("bad magic number",),
         "boolnas-train data.root=dir/ (not IDX)"),
    case("data-cifar-object", "train", ("data=cifar10", "data.root={in}/cifar_evil", "progress=false"),
         ("data_batch_1 is not a dataset file", "refusing to load"),
         "boolnas-train data=cifar10 data.root=dir/ (a pickled object)"),
    case("data-cifar-labels", "train", ("data=cifar10", "data.root={in}/cifar_labels", "progress=false"),
         ("labels outside 0..9",), "boolnas-train data=cifar10 data.root=dir/ (label 200)"),
    case("data-cifar-no-root", "train", ("data=cifar10", "progress=false"), ("data=cifar10 needs data.root",),
         "boolnas-train data=cifar10"),
    case("search-missing-data", "search", "data.root={in}/nowhere", ("does not exist", "dataset-fashion-mnist"),
         "boolnas-search data.root=nowhere/"),
])
MEMORY = group("memory", [
    case("train-synthetic-too-large", "train", (*SYNTH, "data.input_size=100000"),
         ("data=synthetic at 1x100000x100000", "GiB of memory", "lower data.input_size"),
         "boolnas-train data=synthetic data.input_size=100000"),
    case("train-resolution-too-large", "train", (*SYNTH, "budget=tiny", "budget.resolution=20000"),
         ("at 20000x20000", "GiB of memory", "budget.resolution"),
         "boolnas-train budget.resolution=20000"),
    case("train-width-too-large", "train", (*SYNTH, "budget=tiny", "budget.width_mult=2000"),
         ("width x2000", "GiB of memory", "budget.width_mult"), "boolnas-train budget.width_mult=2000"),
    case("search-resolution-too-large", "search", (SYNTHETIC, "budget.resolution=20000"),
         ("at 20000x20000", "GiB of memory"), "boolnas-search budget.resolution=20000"),
    case("workers-resolution-too-large", "search", (SYNTHETIC, "workers=2", "budget.resolution=20000"),
         ("at 20000x20000", "GiB of memory"), "boolnas-search workers=2 budget.resolution=20000"),
])
MODEL_FILES = group("model file", [
    case("teacher-missing", "train", (*TEACHER, "budget.kd_teacher={in}/absent.pt"),
         ("model file", "does not exist"), "boolnas-train budget.kd_teacher=absent.pt"),
    case("teacher-garbage", "train", (*TEACHER, "budget.kd_teacher={in}/garbage.pt"),
         ("cannot load checkpoint", "not a torch checkpoint", "give a model.pt written by boolnas-train budget=full"),
         "boolnas-train budget.kd_teacher=garbage.pt (random bytes)"),
    case("teacher-code", "train", (*TEACHER, "budget.kd_teacher={in}/evil.pt"),
         ("cannot load checkpoint", "holds the Python object", "system, refused because loading it could run code"),
         "boolnas-train budget.kd_teacher=evil.pt (a pickle calling os.system)"),
    case("teacher-not-a-model", "train", (*TEACHER, "budget.kd_teacher={in}/dict.pt"),
         ("is not a boolnas model file",), "boolnas-train budget.kd_teacher=other.pt (another torch file)"),
    case("teacher-wrong-weights", "train", (*TEACHER, "budget.kd_teacher={in}/mismatch.pt"),
         ("its weights do not fit its genotype",), "boolnas-train budget.kd_teacher=edited.pt"),
    case("teacher-other-dataset", "train", (*TEACHER, "budget.kd_teacher={in}/rgb.pt"),
         ("3-channel images", "same dataset"), "boolnas-train budget.kd_teacher=cifar_teacher.pt (on Fashion-MNIST)"),
    case("search-teacher-code", "search", (SYNTHETIC, "budget.kd_teacher={in}/evil.pt"),
         ("holds the Python object", "could run code"),
         "boolnas-search budget.kd_teacher=evil.pt"),
])
CASES: list[Case] = [*OVERRIDES, *ARCH_FILES, *PROFILES, *DATASETS, *MEMORY, *MODEL_FILES]


# ---------------------------------------------------------------------------------- inputs
def _write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _fashion_dir(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(root / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    _write_idx(root / "train-labels-idx1-ubyte", rng.integers(0, 10, 20, dtype=np.uint8))
    _write_idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28), dtype=np.uint8))
    _write_idx(root / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10, dtype=np.uint8))
    return root


def _cifar_dir(root: Path, labels: int = 10) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, labels, 4)]}
        (root / name).write_bytes(pickle.dumps(batch))
    return root


class _System:
    """Pickles as a call of os.system: loading it unsafely would create the file ``pwned``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 (pickle protocol)
        return (os.system, (f"touch {self.marker}",))


def _make_inputs(root: Path) -> Path:
    root.mkdir()
    (root / "folder.yaml").mkdir()
    (root / "empty.yaml").write_text("")
    (root / "list.yaml").write_text("- slices\n- 4\n")
    (root / "slices_word.yaml").write_text("slices: four\n")
    (root / "blocks9.yaml").write_text("genotype:\n  blocks: 9\n")
    (root / "depth.yaml").write_text("slices: 4\ndepth: 3\n")
    (root / "tag.yaml").write_text(f"!!python/object/apply:os.system ['touch {root / 'pwned'}']\n")
    (root / "huge.yaml").write_text("# padding\n" * (2 * 1024 * 1024 // 10))
    (root / "garbage.yaml").write_bytes(bytes(range(256)) * 8)
    (root / "nested.yaml").write_text("[" * 5000 + "]" * 5000 + "\n")
    profile = yaml.safe_load((REPO / "conf" / "energy" / "boolnet65nm.yaml").read_text())
    for name, edit in (("negative", ("sram", "fm_buffer_kib", -1.0)), ("string", ("compute", "clock_ghz", "fast"))):
        bad = json.loads(json.dumps(profile))
        bad[edit[0]][edit[1]] = edit[2]
        (root / f"{name}.yaml").write_text(yaml.safe_dump(bad))
    (root / "no_dram.yaml").write_text(yaml.safe_dump({k: v for k, v in profile.items() if k != "dram"}))
    partial = _fashion_dir(root / "fmnist_partial")
    (partial / "t10k-labels-idx1-ubyte").unlink()
    truncated = _fashion_dir(root / "fmnist_truncated")
    images = truncated / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    badgz = _fashion_dir(root / "fmnist_badgz")
    raw = (badgz / "train-images-idx3-ubyte").read_bytes()
    (badgz / "train-images-idx3-ubyte").unlink()
    blob = bytearray(gzip.compress(raw))
    blob[20:60] = bytes(40)  # corrupt the deflate stream, keep the gzip header
    (badgz / "train-images-idx3-ubyte.gz").write_bytes(bytes(blob))
    magic = _fashion_dir(root / "fmnist_magic")
    (magic / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04 this is a zip file, not IDX")
    evil = _cifar_dir(root / "cifar_evil")
    (evil / "data_batch_1").write_bytes(pickle.dumps({b"data": _System(root / "pwned"), b"labels": [0]}))
    _cifar_dir(root / "cifar_labels", labels=200)
    (root / "garbage.pt").write_bytes(np.random.default_rng(1).bytes(4096))
    torch.save({"model": _System(root / "pwned")}, root / "evil.pt")
    torch.save({"weights": torch.zeros(3)}, root / "dict.pt")
    from boolnas.evaluators.accuracy import build_for, save_model
    from boolnas.space import Task, get_preset

    genotype = get_preset("basenet18_k1")
    small = Task(input_size=8, in_channels=1, num_classes=10, width_mult=0.25, stem="small")
    model = build_for(genotype, small)
    state = model.state_dict()
    state.pop(next(iter(state)))
    torch.save({"genotype": genotype.to_dict(), "task": small.to_dict(), "metrics": {}, "state_dict": state},
               root / "mismatch.pt")
    rgb = Task(input_size=8, in_channels=3, num_classes=10, width_mult=0.25, stem="small")
    save_model(root / "rgb.pt", build_for(genotype, rgb), genotype, rgb, {})
    (root / "results" / "demo").mkdir(parents=True)  # a study folder without its storage file
    return root


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1 for p in sorted(root.rglob("*"))}


# ---------------------------------------------------------------------------------- the runner
DRIVER = r"""
import gc, importlib, json, os, signal, sys
module, spec = sys.argv[1], sys.argv[2]
main = importlib.import_module(module).main
todo = json.loads(open(spec).read())
gc.freeze()  # the collector leaves the imported modules' objects alone: forks share their pages
codes, mine = {}, None
for case in todo:
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        mine = case
        break
    codes[case["id"]] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
if mine is None:
    print(json.dumps(codes))
    sys.exit(0)
for fd, name in ((1, "stdout"), (2, "stderr")):
    os.dup2(os.open(mine[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
os.chdir(mine["cwd"])
signal.alarm(120)
sys.argv = [mine["prog"], *mine["args"]]
main()
"""


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    cwd: Path


class Runner:
    """Runs the cases of one command in one forking process, on first request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = _make_inputs(root / "in")
        self.before = _snapshot(self.inputs)
        self.done: dict[str, Outcome] = {}

    def args(self, c: Case) -> list[str]:
        return [a.replace("{in}", str(self.inputs)) for a in c.args]

    def get(self, c: Case) -> Outcome:
        if not self.done:
            self._run_all()
        return self.done[c.id]

    def _run_all(self) -> None:
        """One forking process per command, all started at once (they mostly wait on imports)."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        env.pop("HYDRA_FULL_ERROR", None)
        started = []
        for cli, module in MODULES.items():
            batch = [c for c in CASES if c.cli == cli]
            specs = []
            for c in batch:
                cwd = self.root / "cwd" / c.id
                cwd.mkdir(parents=True)
                specs.append({"id": c.id, "prog": f"boolnas-{cli}", "args": self.args(c), "cwd": str(cwd),
                              "stdout": str(self.root / f"{c.id}.out"), "stderr": str(self.root / f"{c.id}.err")})
            spec = self.root / f"{cli}.json"
            spec.write_text(json.dumps(specs))
            proc = subprocess.Popen([sys.executable, "-c", DRIVER, module, str(spec)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, cwd=self.root, env=env,
                                    stdin=subprocess.DEVNULL)
            started.append((proc, batch, specs))
        for proc, batch, specs in started:
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, stderr
            codes = json.loads(stdout.strip().splitlines()[-1])
            for c, s in zip(batch, specs):
                self.done[c.id] = Outcome(codes[c.id], Path(s["stdout"]).read_text(errors="replace"),
                                          Path(s["stderr"]).read_text(errors="replace"), Path(s["cwd"]))


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    r = Runner(tmp_path_factory.mktemp("hostile"))
    yield r
    # no case wrote into (or next to) its inputs, and no unsafe load ran code
    assert _snapshot(r.inputs) == r.before


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(runner: Runner, c: Case) -> None:
    out = runner.get(c)
    assert out.code == c.code, f"exit {out.code}\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("error: ") or "\nerror: " in out.stderr, out.stderr
    for words in c.expect:
        assert words in out.stderr, f"{words!r} not in: {out.stderr}"
    assert list(out.cwd.iterdir()) == [], "files left behind in the working directory"
    assert not (runner.inputs / "pwned").exists()


# ---------------------------------------------------------------------------------- real processes
def _console(cli: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / f"boolnas-{cli}"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", MODULES[cli]]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_forked_run_matches_the_console_script(runner: Runner, tmp_path: Path) -> None:
    """The harness is faithful: the console script prints the same and exits the same."""
    for c in (next(c for c in CASES if c.id == "plan-unknown-key"), next(c for c in CASES if c.id == "arch-empty")):
        real = _console(c.cli, *runner.args(c), cwd=tmp_path)
        forked = runner.get(c)
        assert (real.returncode, real.stderr, real.stdout) == (forked.code, forked.stderr, forked.stdout)


def test_debug_true_shows_the_traceback(runner: Runner, tmp_path: Path) -> None:
    empty = runner.inputs / "empty.yaml"
    out = _console("plan", f"arch={empty}", "debug=true", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ArchError" in out.stderr and "is empty" in out.stderr
    # a bad override, refused before Hydra runs, shows its traceback too
    out = _console("plan", "arhc=bireal18", "debug=true", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "unknown key 'arhc'" in out.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- docs/errors.md
def test_readme_lists_exactly_these_cases() -> None:
    text = (REPO / "docs" / "errors.md").read_text()
    start = text.index("## Bad input: what you see")
    end = text.find("\n#", start + 10)
    section = text[start:end if end > 0 else len(text)]
    rows = [[cell.strip().strip("`") for cell in line.split("|")[1:3]] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| input |")]
    # rows of other groups (e.g. storage URLs) are another test's business
    listed = sorted((grp, example) for grp, example in rows if grp in {c.group for c in CASES})
    assert listed == sorted((c.group, c.doc) for c in CASES)
