"""Where the commands' YAML configs live, and the values a config group may take.

conf/ ships inside the package (``boolnas.conf``), so it is found the same way in a checkout and
in a wheel. A config group's values are the files conf/<group>/<value>.yaml.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

CONF_DIR = str(importlib.resources.files("boolnas.conf"))


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
        options = group_choices(conf_dir, name)
        if value not in options:
            raise ValueError(f"{name}={value!r} is unknown; use one of {options}")


def group_choices(conf_dir: str | Path, group: str) -> list[str]:
    """The values of config group ``group``: the names of conf/<group>/*.yaml, sorted."""
    return sorted(p.stem for p in (Path(conf_dir) / group).glob("*.yaml"))
