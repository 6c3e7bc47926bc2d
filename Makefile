# `make test` and `make demo` work on a fresh clone: each creates .venv and installs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench bench-budget test-all clean prometheus-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,prometheus,otel,dask,integration]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check threadpool_plus tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict

# Here the real-library tests must run: a missing library fails them instead of skipping.
pytest: $(STAMP) prometheus-tools
	THREADPOOL_PLUS_INTEGRATION=required $(BIN)/python -m pytest

# The Prometheus integration test needs a real server and promtool: Debian's package,
# installed when missing and possible (CI runs as root). Otherwise that test skips.
prometheus-tools:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's prometheus package for the integration test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null \
	      || echo "could not install prometheus: its integration test will skip"; \
	  else \
	    echo "prometheus/promtool missing and not root: the integration test will skip"; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/suite.py
	$(BIN)/python benchmarks/dask_throughput.py

# Per-side hot-path cost against the stdlib, checked against benchmarks/budget.json (exit 1
# when a side's ratio is >10% worse than recorded). Not part of `make test`: timings never
# gate the test suite. Re-record with: $(BIN)/python benchmarks/profile_hot_path.py --record
bench-budget: $(STAMP)
	$(BIN)/python benchmarks/profile_hot_path.py --budget

# The suite on every Python this machine has: pyenv's 3.10-3.13 and Debian's 3.14/3.15.
test-all:
	./.ci/test-all

clean:
	rm -rf $(VENV) .venv-* .mypy_cache .pytest_cache .ruff_cache .hypothesis *.egg-info
