# Set-up and common tasks. Every target creates .venv and installs gradflow into it on first use.
# TORCH is what gets installed when the venv has no torch yet (torch==2.13.0 is a CPU wheel on the
# project's machines); to reuse a torch you already have: make test VENV_FLAGS=--system-site-packages
PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.gradflow-installed
OUT ?= demo-out

.PHONY: install test test-slow bench-smoke demo lint clean docs docs-quick docs-clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gradflow demo --out $(OUT) --overwrite  # rerunnable: replaces the previous report

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]  # exit 5: no slow tests collected

bench-smoke: $(STAMP)
	@for script in $(wildcard benchmarks/bench_*.py); do \
		echo "== $$script --smoke"; \
		$(BIN)/python $$script --smoke --out $$(mktemp -d) || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check gradflow tests benchmarks examples docs/conf.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info

# Documentation (Sphinx + sphinx-gallery): installs the [docs] extra into the venv on first use and builds
# with -W (warnings are errors) into docs/_build/html, executing every example in examples/ (one torch
# thread). docs-quick (CI) executes only the examples listed in QUICK_EXAMPLES in docs/conf.py and renders
# the others without outputs. Switching between the two rebuilds the gallery (docs/auto_examples/.mode).
DOCS_STAMP := $(VENV)/.gradflow-docs-installed
DOCS_BUILD = OMP_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	@[ "$$(cat docs/auto_examples/.mode 2>/dev/null)" = full ] || rm -rf docs/auto_examples
	$(DOCS_BUILD)
	echo full > docs/auto_examples/.mode
	@echo "docs: open docs/_build/html/index.html"

docs-quick: $(DOCS_STAMP)
	@[ "$$(cat docs/auto_examples/.mode 2>/dev/null)" = quick ] || rm -rf docs/auto_examples
	GRADFLOW_DOCS_QUICK=1 $(DOCS_BUILD)
	echo quick > docs/auto_examples/.mode
	@echo "docs (quick: slow examples not executed): open docs/_build/html/index.html"

docs-clean:
	rm -rf docs/_build docs/auto_examples docs/gen_modules docs/benchmarks docs/sg_execution_times.rst
