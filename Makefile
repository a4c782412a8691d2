# Two commands set everything up on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tmf-server serve

test: $(STAMP)
	$(BIN)/python -m pytest

# The benchmark of this server on a temporary embedded engine (docs/performance.md), about 5 minutes;
# options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--large 100000"
bench: $(STAMP)
	@$(BIN)/tmf-server bench --local $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
