"""The command-line front ends, one module per console script (pyproject.toml ``[project.scripts]``):
plan (boolnas-plan), energy (boolnas-energy), train (boolnas-train), search (boolnas-search, also
``python -m boolnas.search``), report (boolnas-report) and export (boolnas-export); support.py and
studies.py hold what they share.

The only importers of Hydra and OmegaConf: the engine (search/*.py) takes plain dicts and typed
configs and never imports this package (tests/test_layering.py). Kept empty so that a command
imports no more than it needs: each installs its Ctrl-C hook before the heavy imports.
"""
