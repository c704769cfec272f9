"""``python -m boolnas.search``: the same as ``boolnas-search``."""

from boolnas.search.search_cli import main

main()
