# mgcli — every target installs what it needs into .venv on first use.
#   make test    the test suite (what CI runs)
#   make demo    the pipeline on the bundled synthetic sample, on CPU
#   make bench   the benchmarks in tests/benchmarks/

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MG     := $(VENV)/bin/mg
DEMO   ?= demo
STAMP  := $(VENV)/.mgcli-installed

# torch + torchvision builds that install together (and import together) from the package index.
ifeq ($(shell uname -m),aarch64)
TORCH  ?= torch==2.9.1 torchvision==0.24.1
else
TORCH  ?= torch==2.14.1 torchvision==0.29.1
endif

.PHONY: install test demo bench clean clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,mediapipe]'
	touch $@

test: install
	$(PY) -m pytest -q -n 2

$(DEMO)/sample/sample.json: | install
	$(MG) sample-data $(DEMO)/sample --overwrite

demo: install $(DEMO)/sample/sample.json
	$(MG) inspect $(DEMO)/sample

bench: install
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-demo:
	rm -rf $(DEMO)

clean: clean-demo
	rm -rf $(VENV) *.egg-info .pytest_cache
