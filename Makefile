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

.PHONY: install test test-slow bench-smoke demo lint clean

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
	$(BIN)/ruff check gradflow tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
