"""What the commands that open an existing study share (boolnas-report, boolnas-export, a
resumed boolnas-search): checking ``study=`` before the study is opened, and choosing the storage
of a study folder when the command line names none (:func:`storage_from_folder`, handed to
:func:`search.cli.support.run_cli`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

from boolnas.search.cli.support import check_output_dir
from boolnas.search.config import STUDY_NAME
from boolnas.search.storage import LOCAL_FILES, detect_local_kind, is_local_file

log = logging.getLogger("boolnas.cli")


def existing_study(study: Any, storage: Any, results_dir: Path) -> str:
    """Check ``study=`` of a command that reads a study (report, export) before opening it.

    The name must be a plain study name (no path), ``results_dir`` a folder whose study folder
    can be written (the command writes there), and a storage file in the results folder
    (sqlite ``study.db`` / journal ``journal.log``) must exist: opening a missing one would
    create an empty database there.
    """
    name = str(study)
    if not STUDY_NAME.match(name):
        raise ValueError(f"study={name!r} is not a valid study name (letters, digits, '_', '-', '.'; no paths): "
                         "give the name a search was run with")
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f"results_dir={results_dir} is a file, not a folder; give the results_dir= of the search")
    if is_local_file(storage):
        study_dir = results_dir / name
        file = study_dir / LOCAL_FILES[storage.kind]
        if not file.is_file():
            other = "journal" if storage.kind == "sqlite" else "sqlite"
            hint = (f"; {study_dir} holds no {file.name}: was it run with storage={other}?" if study_dir.is_dir()
                    else "")
            raise ValueError(f"no study {name!r} in {results_dir}/ (run boolnas-search study={name} first, "
                             f"or pass results_dir= and storage= of the search){hint}")
    check_output_dir(results_dir / name, "results_dir", results_dir)
    return name


def storage_from_folder(argv: Sequence[str], cfg: Any) -> str | None:
    """``storage=<kind>`` to add to a command line that names no storage, when its study folder
    holds the other local kind's file only (a study run with ``storage=journal``, read back with
    the default sqlite); None when there is nothing to change. Several studies (``study=[a,b]``):
    switched when their folders agree. A folder holding both files: a ValueError asking the user
    to choose."""
    if any(a.lstrip("+~").partition("=")[0] in ("storage", "storage.kind", "storage.url") for a in argv):
        return None  # the user chose
    if OmegaConf.select(cfg, "storage.kind") is None or OmegaConf.is_missing(cfg, "study"):
        return None
    study, results_dir = OmegaConf.select(cfg, "study"), OmegaConf.select(cfg, "results_dir")
    if results_dir is None or OmegaConf.select(cfg, "storage.url"):
        return None
    configured = str(cfg.storage.kind)
    if configured not in LOCAL_FILES:
        return None
    names = [str(n) for n in study] if isinstance(study, ListConfig) else [str(study)]
    folders = [Path(str(results_dir)) / n for n in names if STUDY_NAME.match(n)]
    kinds: set[str] = set()  # the storage kind of each study folder that holds one
    for folder in folders:
        other = detect_local_kind(folder, configured)  # (a folder holding both raises)
        if other is not None:
            kinds.add(other)
        elif (folder / LOCAL_FILES[configured]).is_file():
            kinds.add(configured)
    if len(kinds) != 1 or configured in kinds:
        return None  # nothing to switch to, or studies of both kinds (the command names the missing file)
    kind = kinds.pop()
    shown = folders[0] if len(folders) == 1 else f"{Path(str(results_dir))}/{{{','.join(names)}}}"
    log.info("%s holds %s and no %s: opening it with storage=%s (pass storage= to choose)", shown,
             LOCAL_FILES[kind], LOCAL_FILES[configured], kind)
    return f"storage={kind}"
