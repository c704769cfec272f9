"""What every boolnas command line shares: stderr logging and clean failure on bad input.

A user error (bad override, unknown preset, malformed file) ends the program with exit code
2 and one message on stderr, naming the problem and the fix; the traceback is shown only
with ``debug=true``. :func:`run_cli` checks the command line before Hydra sees it: an unknown
config-group value, an unknown key or an override Hydra cannot parse is such a user error too
(Hydra itself would exit with code 1 and a generic hint).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
WORKER_TAG_ENV = "BOOLNAS_WORKER_TAG"  # a log prefix naming the worker (set by search/workers.py)
START_GATE_ENV = "BOOLNAS_START_GATE"  # "1" for supervised workers: wait for "go" on stdin, write no reports
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr only, so stdout stays clean for tables and JSON."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    tag = os.environ.get(WORKER_TAG_ENV, "")  # set by `workers=N` for its worker processes
    handler.setFormatter(logging.Formatter(f"[%(levelname)s]{' ' + tag if tag else ''} %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def guarded(body: Callable[[Any], None], cfg: Any) -> None:
    """Run ``body(cfg)``, turning user errors into a one-line message and exit code 2."""
    setup_logging()
    debug = bool(cfg.get("debug", False)) if hasattr(cfg, "get") else False
    try:
        body(cfg)
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        raise SystemExit(0) from None
    except USER_ERRORS as exc:
        if debug:
            raise
        fail(str(exc))


def check_group_choices(argv: Sequence[str], conf_dir: str | Path, groups: Sequence[str]) -> None:
    """Refuse ``group=value`` overrides whose value has no conf/<group>/<value>.yaml.

    Hydra would refuse them too, but with exit code 1 and a long hint; this names the
    allowed values and lets the caller exit with code 2 like every other user error.
    """
    for arg in argv:
        name, sep, value = arg.partition("=")
        name = name.lstrip("+~")
        if not sep or name not in groups or "/" in value:
            continue
        options = sorted(p.stem for p in (Path(conf_dir) / name).glob("*.yaml"))
        if value not in options:
            raise ValueError(f"{name}={value!r} is unknown; use one of {options}")


def debug_requested(argv: Sequence[str]) -> bool:
    """True when the command line holds ``debug=true`` (checked before Hydra parses it)."""
    return any(a.lstrip("+").lower() in ("debug=true", "debug=1", "debug=yes") for a in argv)


def check_overrides(argv: Sequence[str], config_name: str, groups: Sequence[str] = ()) -> None:
    """Compose ``config_name`` with ``argv`` as Hydra will, raising ValueError on a bad override.

    Refuses unknown config-group values (naming the allowed ones), unknown keys (naming the
    keys there are), overrides Hydra cannot parse and interpolations that do not resolve.
    Command lines with Hydra flags (``--help``, ``--cfg``, ``-m``) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    check_group_choices(argv, CONF_DIR, groups)
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(argv)
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(config_name, overrides=overrides)
            OmegaConf.to_container(cfg, resolve=True)
            base = compose(config_name, overrides=[a for a in overrides if not a.startswith("+")])
    except OverrideParseException as exc:
        arg = exc.override or "?"
        raise ValueError(f"cannot parse the override {arg!r}: {_one_line(exc.message)}; "
                         "write key=value (quote values holding spaces or brackets)") from exc
    except HydraException as exc:
        raise ValueError(_composition_message(exc, overrides, config_name, groups)) from exc
    except OmegaConfBaseException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"bad override: {first}") from exc
    _refuse_added_keys(overrides, base, config_name, groups)


def _refuse_added_keys(overrides: Sequence[str], base: Any, config_name: str, groups: Sequence[str]) -> None:
    """Hydra's ``+key=value`` (and ``++key=value``) adds a key the config does not have; no
    boolnas command would ever read it, so the value would be silently ignored. Refused."""
    from omegaconf import OmegaConf

    for arg in overrides:
        if not arg.startswith("+"):
            continue
        key = arg.lstrip("+").partition("=")[0].strip()
        if key.startswith("hydra") or key in groups or OmegaConf.select(base, key, default=_MISSING) is not _MISSING:
            continue
        raise ValueError(f"unknown key {key!r} in {arg!r}: '+' adds a key that this command never reads; "
                         f"{_keys_hint(key, config_name, list(overrides), groups)}")


_MISSING = object()


def _composition_message(exc: Exception, overrides: list[str], config_name: str, groups: Sequence[str]) -> str:
    text = str(exc)
    if text.startswith("Could not override '") and exc.__cause__ is not None:
        key = text[len("Could not override '"):].split("'", 1)[0]
        arg = next((a for a in overrides if a.partition("=")[0] == key), key)
        return f"unknown key {key!r} in {arg!r}; {_keys_hint(key, config_name, overrides, groups)}"
    if "No match in the defaults list" in text:
        key = text.split("'", 2)[1] if text.count("'") >= 2 else "?"
        return f"{key!r} is not a setting of this command; {_keys_hint(key, config_name, overrides, groups)}"
    return f"bad override: {_one_line(text)}"


def _keys_hint(key: str, config_name: str, overrides: list[str], groups: Sequence[str]) -> str:
    """The keys the command takes at the level of ``key`` (check the spelling)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig, OmegaConf

    chosen = [a for a in overrides if a.partition("=")[0] in groups]
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(config_name, overrides=chosen)
    except Exception:  # the hint is a courtesy; the message stands without it
        return "check the spelling"
    parent = key.rpartition(".")[0]
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return "check the spelling"
    where = f"keys under {parent!r}" if parent else "keys"
    return f"check the spelling ({where}: {', '.join(sorted(str(k) for k in node.keys()))})"


def existing_study(study: Any, storage: Any, results_dir: Path) -> str:
    """Check ``study=`` of a command that reads a study (report, export) before opening it.

    The name must be a plain study name (no path), and a storage file in the results folder
    (sqlite ``study.db`` / journal ``journal.log``) must exist: opening a missing one would
    create an empty database there.
    """
    from search.config import STUDY_NAME

    name = str(study)
    if not STUDY_NAME.match(name):
        raise ValueError(f"study={name!r} is not a valid study name (letters, digits, '_', '-', '.'; no paths): "
                         "give the name a search was run with")
    from search.storage import LOCAL_FILES, is_local_file

    if is_local_file(storage):
        study_dir = Path(results_dir) / name
        file = study_dir / LOCAL_FILES[storage.kind]
        if not file.is_file():
            other = "journal" if storage.kind == "sqlite" else "sqlite"
            hint = (f"; {study_dir} holds no {file.name}: was it run with storage={other}?" if study_dir.is_dir()
                    else "")
            raise ValueError(f"no study {name!r} in {results_dir}/ (run boolnas-search study={name} first, "
                             f"or pass results_dir= and storage= of the search){hint}")
    return name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_cli(hydra_main: Callable[[], None], config_name: str, groups: Sequence[str] = ()) -> None:
    """A console entry point: check the command line (bad input exits 2), then run Hydra's main."""
    argv = sys.argv[1:]
    try:
        check_overrides(argv, config_name, groups)
    except ValueError as exc:
        if debug_requested(argv):
            raise
        setup_logging()
        fail(str(exc))
    hydra_main()
