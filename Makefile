# Two commands set everything up on a fresh machine with Python 3.11, 3.12 or 3.13: `make run` and `make test`.
# The interpreter is the first supported one of python3, python3.13, python3.12, python3.11; choose another with
# `make run PYTHON=python3.12` (a different interpreter than the one .venv was made with rebuilds .venv).
SUPPORTED := 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'
PYTHON ?= $(firstword $(foreach candidate,python3 python3.13 python3.12 python3.11,\
	$(shell $(candidate) -c $(SUPPORTED) >/dev/null 2>&1 && echo $(candidate))))
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
STAMP := $(VENV)/.installed-python$(PYTHON_VERSION)

.PHONY: run test bench install clean python

python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "No supported Python found: tmf-server needs Python 3.11, 3.12 or 3.13 as python3, python3.13," \
		     "python3.12 or python3.11. Install one, or name it: make run PYTHON=/path/to/python3.12" >&2; exit 1; fi
	@if ! $(PYTHON) -c $(SUPPORTED) 2>/dev/null; then \
		echo "PYTHON=$(PYTHON) is $(if $(PYTHON_VERSION),Python $(PYTHON_VERSION),not an interpreter that runs here);" "tmf-server needs 3.11, 3.12 or 3.13:" \
		     "make run PYTHON=python3.12 (or another supported interpreter)" >&2; exit 1; fi

$(STAMP): pyproject.toml | python
	@echo "Using $(PYTHON) (Python $(PYTHON_VERSION)) for $(VENV)"
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tmf-server serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmark of this server on a temporary embedded engine (docs/performance.md), about 5 minutes;
# options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--large 100000"
bench: $(STAMP)
	@$(BIN)/tmf-server bench --local $(BENCH_ARGS)

# Removes the virtual environment, the embedded engine's data (./var) and pytest's cache.
clean:
	rm -rf $(VENV) var .pytest_cache
