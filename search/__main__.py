"""``python -m search``: the same as ``boolnas-search``."""

from search.search_cli import main

main()
