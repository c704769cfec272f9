"""What every boolnas command line shares: stderr logging, clean failure on bad input, one
interrupt policy and generated ``--help``.

- **Bad input** (bad override, unknown preset, malformed file) ends the program with exit code
  2 and one message on stderr, naming the problem and the fix; the traceback is shown only with
  ``debug=true``. :func:`run_cli` checks the command line before Hydra sees it: an unknown
  config-group value, an unknown key or an override Hydra cannot parse is such a user error too
  (Hydra itself would exit with code 1 and a generic hint).
- **Files that cannot be written** (a file where a folder should be, a read-only or unwritable
  folder, a full disk) are user errors too: exit code 2 and one line naming the path the user
  gave (never a temp file's name) and the key to change (``results_dir=``, ``run_dir=``, ...).
- **Interrupts**: Ctrl-C (SIGINT) and SIGTERM take the same path: a :class:`Interrupted`
  (a ``KeyboardInterrupt``) is raised where the program runs, so the same clean-up runs (a
  search tells its running trial FAIL "interrupted" and writes its reports), then the program
  prints one line, ``interrupted: <how to resume>``, and exits 130 (SIGINT) or 143 (SIGTERM);
  no traceback (``debug=true`` shows it).
- **Help**: ``--help`` / ``-h`` prints what the command does, its config groups with their
  choices (conf/<group>/*.yaml), its keys with their defaults and examples, all read from the
  command's conf/*.yaml, and exits 0.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn, TypeVar

from boolnas.search.conf_dir import CONF_DIR, check_group_choices, group_choices
from boolnas.search.worker_env import START_GATE_ENV, WORKER_TAG_ENV

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError,)
# errors of a write that the user fixes by choosing another place (or freeing space)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
HELP_FLAGS = ("--help", "-h")

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


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


# ----------------------------------------------------------------------------------- interrupts
class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM. A ``KeyboardInterrupt``, so every clean-up written for Ctrl-C runs for
    SIGTERM too; ``signum`` says which signal (the exit code is 128 + signum), ``hint`` how to
    resume (see :func:`on_interrupt`)."""

    def __init__(self, hint: str = "", signum: int | None = None) -> None:
        super().__init__(hint)
        self.hint = hint
        self.signum = signum


_received: list[int] = []  # the signals this process was interrupted by, in order


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum=signum)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (Python's default SIGTERM
    ends the process at once: no clean-up, a trial left RUNNING, no report). A signal the process
    was started with ignored (a background job of a script, ``nohup``-like launchers) stays ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupted)
    if not getattr(sys.unraisablehook, "redelivers_interrupts", False):
        sys.unraisablehook = _redeliver_interrupts(sys.unraisablehook)


REDELIVER_AFTER_S = 0.01


def _redeliver_interrupts(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """An interrupt whose handler ran inside a finalizer (a ``__del__`` or a weakref callback, e.g.
    SQLAlchemy's, run by the garbage collector at any point) cannot propagate: Python prints
    "Exception ignored in ..." with a traceback and drops it. This hook sends the same signal again
    a moment later, from a helper thread, so the program proper gets it and ends as usual."""

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if not isinstance(exc, KeyboardInterrupt):
            previous(unraisable)
            return
        signum = getattr(exc, "signum", None) or signal.SIGINT
        threading.Timer(REDELIVER_AFTER_S, os.kill, (os.getpid(), signum)).start()

    hook.redelivers_interrupts = True  # type: ignore[attr-defined]
    return hook


def quiet_interrupt_while_loading() -> None:
    """Called first by the command-line modules: Ctrl-C while they import torch and Hydra (seconds)
    prints one line instead of an import traceback, and the exit code is 130 as later on. Only an
    interrupt that nothing caught reaches this hook, at the very end (nothing has been opened or
    written yet); other exceptions go to the previous hook. :func:`run_cli` installs the handlers
    proper. (SIGTERM keeps its default until then: the process ends at once, exit status 143.)"""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(exit_code(value))  # (Python itself would end the process by SIGINT: status -2, not 130)

    sys.excepthook = hook


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM: 128 + the signal's number, as shells report it."""
    signum = getattr(exc, "signum", None) or (_received[-1] if _received else signal.SIGINT)
    return 128 + int(signum)


@contextmanager
def on_interrupt(hint: str) -> Iterator[None]:
    """Within the block, an interrupt tells the user ``hint`` (e.g. how to resume)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted(hint, getattr(exc, "signum", None)) from exc


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """One line on stderr (none from a supervised worker: its supervisor says it once), then exit."""
    if os.environ.get(START_GATE_ENV) != "1":
        hint = getattr(exc, "hint", "")
        print(f"interrupted{': ' + hint if hint else ''}", file=sys.stderr)
    raise SystemExit(exit_code(exc))


# ------------------------------------------------------------------------------- file errors
def os_error_message(exc: OSError, key: str = "results_dir") -> str:
    """One line for a file operation that failed: the path, the reason and what to do."""
    path, reason = exc.filename, exc.strerror or str(exc)
    if exc.errno is None or path is None:
        return str(exc)
    path = str(path)
    where = f"choose a writable {key}=" if key else "check the path"
    if isinstance(exc, (NotADirectoryError, FileExistsError)):  # FileExistsError: mkdir of a file's name
        blocker = _file_on_the_way(Path(path))
        if blocker is not None:
            return f"cannot write {path}: {blocker} is a file, not a folder; {where.replace('writable', 'folder for')}"
    if exc.errno in NO_SPACE:
        return f"cannot write {path}: {reason}; free some disk space or {where}"
    if exc.errno == errno.EROFS:
        return f"cannot write {path}: {reason}; {where}"
    if isinstance(exc, IsADirectoryError):
        return f"cannot write {path}: it is a folder; {where}"
    if isinstance(exc, PermissionError):
        if Path(path).exists() and not os.access(path, os.R_OK):  # a file the command reads
            return f"cannot read {path}: {reason}; check its permissions"
        return f"cannot write {path}: {reason}; {where}"
    return f"cannot write {path}: {reason}; {where}"


def _file_on_the_way(path: Path) -> Path | None:
    """The first ancestor of ``path`` that is a file (so ``path`` cannot be created), if any."""
    for parent in reversed([path, *path.parents]):
        if parent.exists() and not parent.is_dir():
            return parent
        if not parent.exists():
            return None
    return None


def check_output_dir(folder: str | Path, key: str, value: Any = None) -> None:
    """Refuse, before any work, an output folder that cannot be created or written in: a file
    on its path, or an unwritable (read-only, no permission) first existing folder. Creates nothing."""
    folder = Path(folder)
    shown = f"{key}={value if value is not None else folder}"
    blocker = _file_on_the_way(folder)
    if blocker is not None:
        raise ValueError(f"{shown}: {blocker} is a file, not a folder; choose a folder for {key}=")
    existing = next(p for p in [folder, *folder.parents] if p.exists() or p == p.parent)
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        why = "it is on a read-only file system" if _read_only(existing) else "permission denied"
        raise ValueError(f"{shown}: cannot write in {existing} ({why}); choose a writable {key}=")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


# ----------------------------------------------------------------------------------- the guard
def guarded(body: Callable[[Any], None], cfg: Any, output_key: str = "results_dir") -> None:
    """Run ``body(cfg)``: user errors become a one-line message and exit code 2, an interrupt one
    line and exit code 130 / 143. ``output_key``: the key that chooses where the command writes,
    named when a file cannot be written."""
    setup_logging()
    debug = bool(cfg.get("debug", False)) if hasattr(cfg, "get") else False
    try:
        body(cfg)
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        raise SystemExit(0) from None
    except KeyboardInterrupt as exc:
        if debug:
            raise
        _interrupted(exc)
    except USER_ERRORS as exc:
        if debug:
            raise
        fail(str(exc))
    except OSError as exc:
        if debug:
            raise
        fail(os_error_message(exc, output_key))


def debug_requested(argv: Sequence[str]) -> bool:
    """True when the command line holds ``debug=true`` (checked before Hydra parses it)."""
    return any(a.lstrip("+").lower() in ("debug=true", "debug=1", "debug=yes") for a in argv)


def check_overrides(argv: Sequence[str], config_name: str, groups: Sequence[str] = ()) -> Any:
    """Compose ``config_name`` with ``argv`` as Hydra will, raising ValueError on a bad override;
    returns the composed config (None for command lines left to Hydra).

    Refuses unknown config-group values (naming the allowed ones), unknown keys (naming the
    keys there are), overrides Hydra cannot parse and interpolations that do not resolve.
    Command lines with Hydra flags (``--cfg``, ``-m``) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return None
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
    return cfg


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------- help
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")
_DEFAULT_LINE = re.compile(r"^\s*-\s+(?P<group>[A-Za-z_]\w*):\s*(?P<option>[\w.-]+)\s*(?:#\s?(?P<comment>.*))?$")


def help_text(config_name: str, conf_dir: str | Path = CONF_DIR) -> str:
    """The ``--help`` of a command, read from its conf/<config_name>.yaml: the header comment (what
    it does, examples), the defaults list (config groups, with the choices in conf/<group>/) and
    the keys with their defaults and comments."""
    lines = (Path(conf_dir) / f"{config_name}.yaml").read_text().splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
    title = header[0] if header else config_name
    prog = title.split(":", 1)[0]
    examples = [h for h in header[1:] if h.startswith("boolnas-")]
    prose = [h for h in header[1:] if not h.startswith("boolnas-")]
    groups: list[tuple[str, str, str]] = []
    keys: list[tuple[str, str, str]] = []
    parents: list[tuple[int, str]] = []
    pending: list[str] = []
    in_defaults = False
    for line in lines[len(header):]:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        if in_defaults and stripped.startswith("-"):
            found = _DEFAULT_LINE.match(line)
            if found:  # ("- override hydra/...: none" and "- _self_" do not match)
                groups.append((found["group"], found["option"], found["comment"] or ""))
            pending = []
            continue
        found = _KEY_LINE.match(line)
        if not found:
            pending = []
            continue
        indent, key, value = len(found["indent"]), found["key"], found["value"].strip()
        in_defaults = indent == 0 and key == "defaults"
        if indent == 0 and key == "hydra":
            break
        parents = [(i, k) for i, k in parents if i < indent]
        if in_defaults:
            pending = []
            continue
        if not value:
            parents.append((indent, key))
            continue
        name = ".".join([k for _, k in parents] + [key])
        keys.append((name, "<required>" if value == "???" else value, found["comment"] or " ".join(pending)))
        pending = []
    out = [title]
    out += prose
    out += ["", f"usage: {prog} [key=value ...]   (Hydra overrides; '{prog} --cfg job' prints the composed config)"]
    if groups:
        out += ["", "config groups (group=option; a group's own keys can be set too, e.g. "
                f"{groups[0][0]}.<key>=value):"]
        width = max(len(f"{g}={o}") for g, o, _ in groups) + 2
        for group, option, comment in groups:
            choices = ", ".join(group_choices(conf_dir, group))
            out.append(f"  {f'{group}={option}':<{width}}choices: {choices}")
            if comment:
                out.append(f"  {'':<{width}}{comment}")
    if keys:
        out += ["", "keys (key=default):"]
        width = min(max(len(f"{k}={v}") for k, v, _ in keys) + 2, 40)
        for key, value, comment in keys:
            entry = f"{key}={value}"
            if len(entry) >= width and comment:
                out += [f"  {entry}", f"  {'':<{width}}{comment}"]
            else:
                out.append(f"  {entry:<{width}}{comment}".rstrip())
    if examples:
        out += ["", "examples:"] + [f"  {e}" for e in examples]
    out += ["", "Exit codes: 0 done; 2 bad input or a file that cannot be written (one line on stderr naming the",
            "problem and the fix; debug=true shows the traceback); 130 Ctrl-C, 143 SIGTERM (one line saying how to",
            "resume where that applies)" + ("; 3 too many failed trials in a row." if prog == "boolnas-search"
                                             else ".")]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ the entry point
def run_cli(hydra_main: Callable[[], None], config_name: str, groups: Sequence[str] = (),
            storage_from_folder: Callable[[Sequence[str], Any], str | None] | None = None) -> None:
    """A console entry point: ``--help`` prints the command's help; otherwise check the command line
    (bad input exits 2), pick the storage of an existing study folder when the user named none
    (``storage_from_folder``: search/cli/studies.py, passed by the commands that open a study), then
    run Hydra's main. Ctrl-C and SIGTERM end it with one line (exit 130 / 143)."""
    install_signal_handlers()
    argv = sys.argv[1:]
    if any(a in HELP_FLAGS for a in argv):
        sys.stdout.write(help_text(config_name))
        raise SystemExit(0)
    setup_logging()
    try:
        try:
            cfg = check_overrides(argv, config_name, groups)
            extra = (storage_from_folder(argv, cfg)
                     if storage_from_folder is not None and cfg is not None and "storage" in groups else None)
        except ValueError as exc:
            if debug_requested(argv):
                raise
            fail(str(exc))
        if extra is not None:
            sys.argv.append(extra)
        hydra_main()
    except KeyboardInterrupt as exc:  # outside guarded(): while Hydra composes the config
        if debug_requested(argv):
            raise
        _interrupted(exc)
