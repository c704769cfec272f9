"""Packaging (pyproject.toml): the repository's space/, evaluators/, search/ and conf/ install as
one namespace, boolnas.space / .evaluators / .search / .conf, and the package list stays in step
with the folders (a new subpackage or config group that is not listed would be missing from the
wheel). The wheel's contents are checked here; .ci/wheel_smoke.sh installs it and runs the
commands from a temporary directory."""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

from boolnas.search.conf_dir import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"space": "boolnas.space", "evaluators": "boolnas.evaluators", "search": "boolnas.search",
           "conf": "boolnas.conf"}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def folder_packages() -> set[str]:
    """Every folder under the four that holds code (.py) or configuration (.yaml), itself or below
    (conf/hydra holds only launcher/), as its installed name."""
    found = set()
    for top, name in FOLDERS.items():
        for folder in [REPO / top, *(p for p in (REPO / top).rglob("*") if p.is_dir())]:
            if folder.name == "__pycache__" or not any(folder.rglob("*.py")) and not any(folder.rglob("*.yaml")):
                continue
            found.add(".".join([name, *folder.relative_to(REPO / top).parts]))
    return found


def test_the_package_list_names_every_folder_and_only_those() -> None:
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == folder_packages()


def test_the_four_folders_map_into_one_namespace_and_nothing_generic_is_installed() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["package-dir"] == {name: top for top, name in FOLDERS.items()}
    assert all(p.startswith("boolnas.") for p in setuptools["packages"])
    scripts = PYPROJECT["project"]["scripts"]
    assert all(target.startswith("boolnas.search.") and target.endswith(":main") for target in scripts.values())


def test_the_commands_read_their_configuration_from_the_package() -> None:
    conf = importlib.resources.files("boolnas.conf")
    assert Path(CONF_DIR) == Path(str(conf))
    assert (Path(CONF_DIR) / "search.yaml").is_file()


def test_the_wheel_holds_the_namespace_the_configuration_and_no_generic_names(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy of the checkout's files: a stale build/ folder cannot leak in
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("boolnas-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"boolnas"}
    yamls = {str(p.relative_to(REPO)) for p in (REPO / "conf").rglob("*.yaml")}
    assert {n.removeprefix("boolnas/") for n in names if n.endswith(".yaml")} == yamls
    assert "boolnas/search/cli/support.py" in names and "boolnas/evaluators/deploy/onnx_export.py" in names
    assert not [n for n in names if n.startswith("boolnas/tests/") or n.startswith("boolnas/benchmarks/")]
    assert "boolnas-search = boolnas.search.cli.search:main" in entry_points
