"""Every command's output, byte for byte, from two versions of the code on the same inputs.

A reshaping of the code (issue 19: modules moved, one trial-record schema, one validation helper,
named planner and energy interfaces) must not change what a user sees. This script checks out
``--base`` (a git revision) beside the working tree and runs the same commands with each version's
code: ``boolnas-plan``, ``-energy`` (every format, another task and another profile, the chart),
``-train`` (tiny budget, JSON), ``-report`` and ``-export`` (YAML, ONNX, TorchScript) on a copy of
one study made once, every ``--help``, and bad inputs. It compares exit codes, stdout, stderr and
every file written, and prints the differences (exit 1 if any).

Each version runs from its own tree, whatever is installed (benchmarks/_revision.py: the launcher
maps the ``boolnas`` namespace onto that tree and takes the command's entry point from that tree's
pyproject.toml). What differs between two runs of the same code is masked, and only that:
wall times and throughputs (keys ending in ``_s``, ``_per_s``; "in 1.2 s" in log lines), the
study's own trial durations in the report, plotly's random div ids, and in TorchScript archives the
debug tables (they name the source files, whose paths differ between the trees) and the random
serialization id. The masks are in MASKS and ARCHIVE_NOISE.

    .venv/bin/python benchmarks/output_parity.py --base 8b0cf73          # HEAD's working tree vs 8b0cf73
    .venv/bin/python benchmarks/output_parity.py --base 8b0cf73 --keep /tmp/parity   # keep the outputs
    .venv/bin/python benchmarks/output_parity.py --base HEAD --head HEAD             # the masks suffice
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _revision import add_worktree, command, remove_worktree  # noqa: E402

# Values that differ between two runs of the same code (timings); everything else must be equal.
MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'("(?:\w+_s|\w+_per_s|images_per_s|time_s|wall_s)": )-?[0-9.eE+-]+'), r"\1<t>"),
    (re.compile(r"(\w+_s|images_per_s|time_s)(,|=|: |\s+)-?[0-9][0-9.eE+-]*"), r"\1\2<t>"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms|min)\b(?=[ ,)\]]|$)", re.M), "<t>"),
    (re.compile(r"\d+(\.\d+)? ?(it|img|images|trial)s?/s"), "<rate>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?"), "<date>"),
    (re.compile(r"(datetime_(?:start|complete)|duration)[^,\n]*"), r"\1<masked>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),  # plotly's div ids
)
TEXT_SUFFIXES = {".json", ".csv", ".yaml", ".txt", ".html", ".md", ".log", ""}
SYNTH = ["data=synthetic", "data.num_train=256", "data.val_size=64", "data.num_test=64", "budget=tiny",
         "budget.num_threads=1", "progress=false"]


@dataclass(frozen=True)
class Case:
    name: str
    command: str  # console script: boolnas-plan, ...
    args: tuple[str, ...]
    study: bool = False  # runs in a folder holding a copy of the fixed study (results/parity)


def cases(presets: list[str]) -> list[Case]:
    out: list[Case] = []
    for cli in ("plan", "energy", "train", "search", "report", "export"):
        out.append(Case(f"{cli}-help", f"boolnas-{cli}", ("--help",)))
    out += [Case("plan-table", "boolnas-plan", ("arch=all",)),
            Case("plan-json", "boolnas-plan", ("arch=all", "format=json"))]
    out += [Case(f"plan-{p}", "boolnas-plan", (f"arch={p}", "task=fashion_mnist")) for p in presets]
    out += [Case("energy-table", "boolnas-energy", ("arch=all",)),
            Case("energy-json", "boolnas-energy", ("arch=all", "format=json", "chart=chart.html")),
            Case("energy-task", "boolnas-energy", ("arch=all", "task=fashion_mnist", "format=json", "chart=c2.html")),
            Case("energy-horowitz", "boolnas-energy", ("arch=all", "energy=horowitz45nm", "chart=c3.html")),
            Case("energy-one", "boolnas-energy", ("arch=boolnet18_k4", "format=json"))]
    out += [Case("train-tiny", "boolnas-train", ("arch=basenet18_k1", *SYNTH, "format=json")),
            Case("train-table", "boolnas-train", ("arch=boolnet18_k4", *SYNTH))]
    out += [Case("report", "boolnas-report", ("study=parity",), study=True),
            Case("export-pareto", "boolnas-export", ("study=parity", "top_k=3"), study=True),
            Case("export-knee", "boolnas-export", ("study=parity", "top_k=1", "select=knee"), study=True),
            Case("export-onnx", "boolnas-export", ("arch=boolnet18_k4", "task=fashion_mnist", "out=m.onnx")),
            Case("export-ts", "boolnas-export", ("arch=bireal18", "task=fashion_mnist", "format=torchscript",
                                                 "out=m.pt"))]
    bad = [("plan", ("arch=nope",)), ("energy", ("budget=tiny",)), ("energy", ("energy_file=missing.yaml",)),
           ("train", ("arch=basenet18_k1", "budget.lr=-1", *SYNTH)), ("search", ("n_trials=0",)),
           ("search", ("sampler=nope",)), ("report", ("study=nope",)), ("export", ("study=nope",)),
           ("export", ("arch=basenet18_k1", "format=zip"))]
    out += [Case(f"bad-{c}-{i}", f"boolnas-{c}", args) for i, (c, args) in enumerate(bad)]
    return out


def run(tree: Path, case: Case, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(command(tree, case.command, case.args), cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=1800)


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


# A TorchScript archive: its members but the debug tables (they hold the source files' paths, which
# differ between the two trees) and the archive's random serialization id.
ARCHIVE_NOISE = re.compile(r"(\.debug_pkl|/\.data/serialization_id)$")


def archive_members(raw: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = sorted(n for n in archive.namelist() if not ARCHIVE_NOISE.search(n))
        return b"".join(name.split("/", 1)[-1].encode() + b"\0" + archive.read(name) for name in names)


def snapshot(folder: Path, result: subprocess.CompletedProcess[str]) -> dict[str, bytes]:
    """What a user sees of one command: exit code, stdout, stderr and every file it wrote."""
    out = {"<exit>": str(result.returncode).encode(), "<stdout>": masked(result.stdout).encode(),
           "<stderr>": masked(result.stderr).encode()}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES:
            raw = masked(raw.decode("utf-8", errors="replace")).encode()
        elif zipfile.is_zipfile(path):
            raw = archive_members(raw)
        out[str(path.relative_to(folder))] = raw
    return out


def make_study(tree: Path, where: Path) -> None:
    """The fixed input of report and export: one small study, made once with the base code."""
    case = Case("make-study", "boolnas-search", ("study=parity", "n_trials=6", "seed_presets=[basenet18_k1]",
                                                  "zero_cost=false", "sampler=random", *SYNTH))
    result = run(tree, case, where)
    if result.returncode != 0:
        sys.exit(f"could not make the study:\n{result.stderr}")


def compare(base: dict[str, bytes], head: dict[str, bytes], name: str) -> list[str]:
    problems = []
    for key in sorted(set(base) | set(head)):
        if key not in head or key not in base:
            problems.append(f"{name}: {key} only in {'base' if key in base else 'head'}")
        elif base[key] != head[key]:
            try:
                diff = difflib.unified_diff(base[key].decode().splitlines(), head[key].decode().splitlines(),
                                            "base", "head", lineterm="", n=1)
                problems.append(f"{name}: {key} differs\n" + "\n".join(list(diff)[:20]))
            except UnicodeDecodeError:
                problems.append(f"{name}: {key} differs (binary, {len(base[key])} vs {len(head[key])} bytes)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare the working tree against")
    parser.add_argument("--head", help="git revision to run instead of the working tree")
    parser.add_argument("--keep", type=Path, help="keep the outputs in this folder")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="boolnas-parity-")) if args.keep is None else args.keep
    base_tree = work / "base-tree"
    add_worktree(args.base, base_tree)
    head_tree = REPO if not args.head else add_worktree(args.head, work / "head-tree")
    try:
        from boolnas.space import PRESETS  # the installed code: only the preset names

        study_dir = work / "study"
        if not (study_dir / "results" / "parity").is_dir():
            study_dir.mkdir(parents=True, exist_ok=True)
            make_study(base_tree, study_dir)
        problems: list[str] = []
        selected = [c for c in cases(list(PRESETS)) if not args.only or args.only in c.name]
        for i, case in enumerate(selected, 1):
            shots = []
            for label, tree in (("base", base_tree), ("head", head_tree)):
                cwd = work / label / case.name
                shutil.rmtree(cwd, ignore_errors=True)
                cwd.mkdir(parents=True)
                if case.study:
                    shutil.copytree(study_dir / "results", cwd / "results")
                result = run(tree, case, cwd)
                shots.append(snapshot(cwd, result))
            found = compare(shots[0], shots[1], case.name)
            print(f"[{i}/{len(selected)}] {case.name}: {'identical' if not found else 'DIFFERENT'}", flush=True)
            problems += found
        print("\n".join(problems) if problems else f"all {len(selected)} cases identical")
        return 1 if problems else 0
    finally:
        if args.keep is None:
            for tree in {base_tree, head_tree} - {REPO}:
                remove_worktree(tree)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
