"""``python -m boolnas.search``: the same as ``boolnas-search``."""

from boolnas.search.cli.search import main

main()
