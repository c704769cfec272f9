"""The environment variables through which a worker supervisor (``workers=N``, search/workers.py)
talks to the worker processes it starts (``python -m boolnas.search``)."""

WORKER_TAG_ENV = "BOOLNAS_WORKER_TAG"  # a log prefix naming the worker (set by search/workers.py)
START_GATE_ENV = "BOOLNAS_START_GATE"  # "1" for supervised workers: wait for "go" on stdin, write no reports
