"""What every boolnas command line shares: stderr logging and clean failure on bad input.

A user error (bad override, unknown preset, malformed file) ends the program with exit code
2 and one message on stderr, naming the problem and the fix; the traceback is shown only
with ``debug=true``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr only, so stdout stays clean for tables and JSON."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
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
