"""The layering rules of the code folders, checked on the import graph built from the source (ast),
so a violation fails here before it shows up as a slow or circular import somewhere else.

Every module of space/, evaluators/ and search/ is named as installed (``boolnas.space.plan``);
``from boolnas.x import y`` counts as an import of module ``boolnas.x.y`` when y is one. Imports
at module level and inside functions both count; imports under ``if TYPE_CHECKING:`` (annotations
only, never executed) count for the layering rules but not as runtime imports.

- space/ imports nothing of evaluators/ or search/; evaluators/ imports nothing of search/.
- The engine (search/*.py) never imports the command lines (search/cli/); only those, and
  ``python -m boolnas.search`` (search/__main__.py), do.
- The energy model (evaluators/energy/) imports no torch: none of its modules, and nothing they
  load when imported (their module-level imports followed transitively, with the packages these
  sit in).
- Only the command lines import Hydra and OmegaConf: the engine takes plain dicts and typed configs.
- No import cycle at run time; an annotations-only import that points back up the graph is named
  in :data:`TYPE_ONLY_BACK_EDGES` with the reason.
- No import inside a function of a boolnas module (they used to hold import cycles apart), except
  the lazy loads named in :data:`FUNCTION_LEVEL_ALLOWED`, each with its reason.

The self-test at the end builds a small tree that breaks every rule and checks each is reported.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"space": "boolnas.space", "evaluators": "boolnas.evaluators", "search": "boolnas.search"}
CLI = "boolnas.search.cli"
CLI_ENTRIES = ("boolnas.search.__main__",)  # `python -m boolnas.search` is boolnas-search
ENERGY = "boolnas.evaluators.energy"
CLI_ONLY = ("hydra", "omegaconf")  # third-party packages only the command lines import

# (importer, imported) -> why it is imported inside a function. Each loads on first use something
# heavy or optional that most importers never need; none holds an import cycle apart.
FUNCTION_LEVEL_ALLOWED: dict[tuple[str, str], str] = {
    ("boolnas.space", "boolnas.space.builder"): "space.build loads torch on first use: planning stays torch-free",
    ("boolnas.space", "boolnas.space.sampling"): "space.sample, the optuna-facing entry point, loads on first use: "
                                                 "`import boolnas.space` holds what planning needs",
    ("boolnas.evaluators", "boolnas.evaluators.energy"): "the package re-exports the energy model lazily, so "
                                                         "importing any evaluator does not load it",
    ("boolnas.evaluators.deploy.artifacts", "boolnas.evaluators.deploy.onnx_export"): "onnx is optional "
                                                                                       "(boolnas[deploy])",
    ("boolnas.evaluators.deploy.parity", "boolnas.evaluators.deploy.onnx_export"): "onnx is optional "
                                                                                    "(boolnas[deploy])",
}
# (importer, imported) -> why an annotations-only import points back at a module that imports the importer
TYPE_ONLY_BACK_EDGES: dict[tuple[str, str], str] = {
    ("boolnas.space.plan_checks", "boolnas.space.plan"): "Plan / LayerSpec / Tap in annotations; plan.py "
                                                         "validates every plan it makes with plan_checks",
    ("boolnas.search.storage", "boolnas.search.config"): "StorageConfig in annotations; config validates "
                                                         "storage URLs with storage's resolve_url",
    ("boolnas.evaluators.batches", "boolnas.evaluators.training"): "Budget in annotations; the training loop "
                                                                   "builds its feed here",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # a boolnas module, or a third-party module's dotted name
    where: str  # file:line
    in_function: bool
    type_only: bool  # under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        how = " (inside a function)" if self.in_function else " (annotations only)" if self.type_only else ""
        return f"{self.source} imports {self.target}{how} at {self.where}"

    @property
    def runtime(self) -> bool:
        return not self.type_only

    @property
    def top(self) -> str:
        return self.target.split(".")[0]


def modules(root: Path, folders: Mapping[str, str] = FOLDERS) -> dict[str, Path]:
    """Every module under the folders, by its installed name (a package by its __init__.py)."""
    out = {}
    for folder, package in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: Iterable[str], root: Path) -> list[Import]:
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    where = str(path.relative_to(root))
    found: list[Import] = []

    def add(target: str, node: ast.stmt, in_function: bool, type_only: bool) -> None:
        if target != "__future__":
            found.append(Import(name, target, f"{where}:{node.lineno}", in_function, type_only))

    def visit(nodes: Iterable[ast.AST], in_function: bool, type_only: bool) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(ast.iter_child_nodes(node), True, type_only)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, in_function, True)
                visit(node.orelse, in_function, type_only)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, in_function, type_only)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in known else base, node, in_function, type_only)
            else:
                visit(ast.iter_child_nodes(node), in_function, type_only)

    visit(ast.parse(path.read_text(), filename=str(path)).body, False, False)
    return found


def import_graph(root: Path = REPO, folders: Mapping[str, str] = FOLDERS) -> dict[str, list[Import]]:
    found = modules(root, folders)
    return {name: imports_of(name, path, found, root) for name, path in found.items()}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# ------------------------------------------------------------------------------------ the rules
def layer_violations(graph: Mapping[str, list[Import]]) -> list[str]:
    bad = []
    for imports in graph.values():
        for i in imports:
            if _under(i.source, "boolnas.space") and (_under(i.target, "boolnas.evaluators")
                                                      or _under(i.target, "boolnas.search")):
                bad.append(f"space/ must not import evaluators/ or search/: {i}")
            if _under(i.source, "boolnas.evaluators") and _under(i.target, "boolnas.search"):
                bad.append(f"evaluators/ must not import search/: {i}")
            if _under(i.target, CLI) and not _under(i.source, CLI) and i.source not in CLI_ENTRIES:
                bad.append(f"the engine must not import the command lines ({CLI}): {i}")
    return bad


def torch_violations(graph: Mapping[str, list[Import]], package: str = ENERGY) -> list[str]:
    """torch imported by the energy model's modules, or by anything they load on import."""
    bad = [f"{package} must not import torch: {i}" for name, imports in graph.items() if _under(name, package)
           for i in imports if i.runtime and i.top == "torch"]
    reached = {name: "" for name in graph if _under(name, package)}  # module -> how it was reached
    todo = list(reached)
    while todo:
        name = todo.pop()
        parents = [".".join(name.split(".")[:k]) for k in range(2, name.count(".") + 1)]
        loads = [(i.target, str(i)) for i in graph[name] if i.runtime and not i.in_function and i.target in graph]
        for target, why in loads + [(p, f"{name} sits in {p}") for p in parents if p in graph]:
            if target not in reached:
                reached[target] = f"{reached[name]}\n  {why}"
                todo.append(target)
    for name, how in sorted(reached.items()):
        if _under(name, package):
            continue
        for i in graph[name]:
            if i.runtime and not i.in_function and i.top == "torch":
                bad.append(f"{package} loads torch through:{how}\n  {i}")
    return bad


def cli_only_violations(graph: Mapping[str, list[Import]]) -> list[str]:
    return [f"only the command lines ({CLI}) may import {i.top}: {i}" for imports in graph.values()
            for i in imports if i.top in CLI_ONLY and not _under(i.source, CLI)]


def cycles(graph: Mapping[str, list[Import]]) -> list[list[Import]]:
    """One cycle (as its imports) per strongly connected group of modules, run-time imports only."""
    edges = {name: [i for i in imports if i.runtime and i.target in graph and i.target != name]
             for name, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for i in edges[v]:
            if i.target not in index:
                connect(i.target)
                low[v] = min(low[v], low[i.target])
            elif i.target in stack:
                low[v] = min(low[v], index[i.target])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            connect(v)
    found = []
    for group in groups:  # a shortest way round, from the group's first module back to it
        start = min(group)
        paths: dict[str, list[Import]] = {start: []}
        queue = [start]
        cycle: list[Import] = []
        while queue and not cycle:
            v = queue.pop(0)
            for i in edges[v]:
                if i.target == start:
                    cycle = [*paths[v], i]
                    break
                if i.target in group and i.target not in paths:
                    paths[i.target] = [*paths[v], i]
                    queue.append(i.target)
        found.append(cycle)
    return found


def reaches(graph: Mapping[str, list[Import]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for i in graph[todo.pop()]:
            if i.runtime and i.target in graph and i.target not in seen:
                if i.target == goal:
                    return True
                seen.add(i.target)
                todo.append(i.target)
    return start == goal


def cycle_violations(graph: Mapping[str, list[Import]],
                     allowed: Mapping[tuple[str, str], str] = TYPE_ONLY_BACK_EDGES) -> list[str]:
    bad = ["import cycle:\n  " + "\n  ".join(str(i) for i in cycle) for cycle in cycles(graph)]
    back = {(i.source, i.target): i for imports in graph.values() for i in imports
            if i.type_only and i.target in graph and reaches(graph, i.target, i.source)}
    bad += [f"an annotations-only import closes a cycle; name it in TYPE_ONLY_BACK_EDGES with the reason: {i}"
            for key, i in back.items() if key not in allowed]
    bad += [f"TYPE_ONLY_BACK_EDGES names {key}, which is no longer such an import: remove it"
            for key in allowed if key not in back]
    return bad


def function_level_violations(graph: Mapping[str, list[Import]],
                              allowed: Mapping[tuple[str, str], str] = FUNCTION_LEVEL_ALLOWED) -> list[str]:
    inside = {}
    for imports in graph.values():
        for i in imports:
            if i.in_function and i.runtime and i.target in graph:
                inside.setdefault((i.source, i.target), i)
    bad = [f"import it at the top of the module (a cycle is broken by moving code, not by a late import; a "
           f"deliberate lazy load goes into FUNCTION_LEVEL_ALLOWED with the reason): {i}"
           for key, i in inside.items() if key not in allowed]
    bad += [f"FUNCTION_LEVEL_ALLOWED names {key}, which is no longer imported inside a function: remove it"
            for key in allowed if key not in inside]
    return bad


# ------------------------------------------------------------------------------------ the tests
@functools.cache
def repo_graph() -> dict[str, list[Import]]:
    return import_graph()


def test_the_graph_sees_every_folder_and_the_command_lines() -> None:
    graph = repo_graph()
    assert {"boolnas.space.plan", "boolnas.evaluators.energy.model", "boolnas.search.config",
            "boolnas.search.cli.search", "boolnas.search.__main__"} <= set(graph)
    assert any(i.target == "boolnas.search.cli.support" for i in graph["boolnas.search.cli.plan"])


def test_space_and_evaluators_import_no_layer_above_them_and_the_engine_no_command_line() -> None:
    bad = layer_violations(repo_graph())
    assert not bad, "\n".join(bad)


def test_the_energy_model_imports_no_torch() -> None:
    bad = torch_violations(repo_graph())
    assert not bad, "\n".join(bad)


def test_only_the_command_lines_import_hydra_and_omegaconf() -> None:
    bad = cli_only_violations(repo_graph())
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    bad = cycle_violations(repo_graph())
    assert not bad, "\n".join(bad)


def test_no_import_inside_a_function_except_the_named_lazy_loads() -> None:
    bad = function_level_violations(repo_graph())
    assert not bad, "\n".join(bad)


def test_each_rule_reports_a_violation(tmp_path: Path) -> None:
    files = {
        "space/__init__.py": "",
        "space/plan.py": "from boolnas.evaluators import energy\n",  # a layer above
        "evaluators/__init__.py": "",
        "evaluators/energy/__init__.py": "from boolnas.evaluators.energy.model import estimate\n",
        "evaluators/energy/model.py": "from boolnas.space import records\n",
        "space/records.py": "import torch.nn\n",  # torch, loaded by the energy model through space
        "search/__init__.py": "",
        "search/config.py": "from omegaconf import OmegaConf\n"  # Hydra's config outside the command lines
                            "from boolnas.search.cli.support import CONF_DIR\n"  # the engine -> a command line
                            "def f():\n    from boolnas.search import storage\n",  # a late import, a cycle
        "search/storage.py": "from typing import TYPE_CHECKING\nfrom boolnas.search.config import f\n"
                             "if TYPE_CHECKING:\n    from boolnas.search import report\n",
        "search/report.py": "from boolnas.search.storage import f\n",  # a back edge, annotations only
        "search/cli/__init__.py": "",
        "search/cli/support.py": "import hydra\n",  # fine
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["boolnas.search.config"][2].target == "boolnas.search.storage"  # a submodule, not the package
    layers = "\n".join(layer_violations(graph))
    assert "space/ must not import" in layers and "space/plan.py:1" in layers
    assert "the engine must not import the command lines" in layers and "search/config.py:2" in layers
    torch = "\n".join(torch_violations(graph))
    assert "boolnas.space.records imports torch.nn at space/records.py:1" in torch
    assert "boolnas.evaluators.energy.model imports boolnas.space.records" in torch
    hydra = cli_only_violations(graph)
    assert len(hydra) == 1 and "import omegaconf" in hydra[0] and "search/config.py:1" in hydra[0]
    cycle = "\n".join(cycle_violations(graph, allowed={}))
    assert "boolnas.search.config imports boolnas.search.storage (inside a function)" in cycle
    assert "boolnas.search.storage imports boolnas.search.config at search/storage.py:2" in cycle
    assert "closes a cycle" in cycle and "boolnas.search.storage imports boolnas.search.report" in cycle
    stale = cycle_violations(graph, allowed={("a", "b"): "", ("boolnas.search.storage", "boolnas.search.report"): ""})
    assert "('a', 'b'), which is no longer" in "\n".join(stale) and "closes a cycle" not in "\n".join(stale)
    late = function_level_violations(graph, allowed={})
    assert len(late) == 1 and "search/config.py:4" in late[0]
    assert not function_level_violations(graph, allowed={("boolnas.search.config", "boolnas.search.storage"): ""})
