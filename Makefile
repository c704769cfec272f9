# boolnas: common jobs. Every target sets up what it needs first.
#   make search     set up, then run the main job (the default search; STUDY=name ARGS='n_trials=60 ...')
#   make dashboard  serve the study with optuna-dashboard (STUDY=name, PORT=8080)
#   make test       set up, then run the test suite
#   make bench      run the benchmarks (ratios measured side by side)
#   make lint       ruff
#   make wheel-check  build the wheel, install it into a fresh venv, run the commands from /tmp (CI)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the tests and the default data need; installed when apt-get is available
# and we are root (CI, fresh machines). Elsewhere install them yourself or skip.
# chromium: the test that opens the HTML report headless (skipped where it is missing);
# postgresql: the tests start a private server from its binaries (tests/postgres_server.py).
DEB_PACKAGES := dataset-fashion-mnist chromium postgresql

STUDY ?= boolnas
ARGS  ?=
# workers=auto: one single-threaded worker per usable CPU (the most proxy trials per hour,
# benchmarks/bench_concurrency.py); WORKERS=1 runs one worker on all CPUs.
WORKERS ?= auto
PORT  ?= 8080

.PHONY: setup system-deps search dashboard test test-all bench lint wheel-check clean

setup: $(STAMP) system-deps

# torch is pinned through constraints.txt (the CPU build on local disk on our machines);
# installing the package elsewhere without it gives a normal torch.
$(STAMP): pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c .ci/constraints.txt -e '.[dev]'
	touch $@

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: Debian packages missing:$$missing (install them with apt-get)" >&2; \
	  fi; \
	fi

# The default search (conf/search.yaml: 30 trials, proxy budget, about 15 minutes on 2 CPU cores).
# Running it again resumes the study and stops at n_trials finished trials.
search: setup
	$(BIN)/boolnas-search study=$(STUDY) workers=$(WORKERS) $(ARGS)
	@echo "report: results/$(STUDY)/report.html (Pareto plot: results/$(STUDY)/pareto.html, table: results/$(STUDY)/trials.csv)"

dashboard: setup
	$(BIN)/optuna-dashboard --port $(PORT) sqlite:///results/$(STUDY)/study.db

test: setup
	$(BIN)/pytest -q

# Left out: bench_table.py, the boolnas-bench campaign (hours), and bench_imagefolder_memory.py
# (25 minutes; it rewrites the committed imagefolder_memory.json): run them by hand.
bench: setup
	@for b in benchmarks/bench_*.py; do case $$b in *bench_table.py|*bench_imagefolder_memory.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The package as users install it: wheel -> fresh virtual environment -> commands from a temp dir.
wheel-check: setup
	bash .ci/wheel_smoke.sh

lint: setup
	$(BIN)/ruff check space evaluators search tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
