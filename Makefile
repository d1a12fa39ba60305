# optbench — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch that these machines hold locally; on a GPU machine use e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help setup setup-dev demo test test-fast lint bench gpu-check gpu-check-dry clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH_SPEC)"

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed ## create .venv and install optbench (CPU torch unless TORCH_SPEC says otherwise)

setup-dev: $(VENV)/.installed-dev ## setup, plus the test dependencies

demo: setup ## install, then run the default job (logreg, GD, W&B offline) into runs/
	$(BIN)/optbench run

test: setup-dev ## install, then run the whole test suite
	$(BIN)/python -m pytest

test-fast: setup-dev ## the test suite without the `slow` end-to-end checks
	$(BIN)/python -m pytest -m "not slow"

lint: setup-dev ## ruff over the code, the tests and the benchmarks; the import layers (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: setup ## run the performance benchmarks (each prints ratios against a baseline)
	@for b in benchmarks/*.py; do [ $$b = benchmarks/gpu_check.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

gpu-check: setup ## on one CUDA device, <= 6 min: LLaMA-60M x 4 optimizers, probe, CIFAR; report in runs/gpu_check/
	$(BIN)/python benchmarks/gpu_check.py $(ARGS)

gpu-check-dry: setup ## the GPU check CPU-sized (tiny model, few steps), as the tests run it
	$(BIN)/python benchmarks/gpu_check.py --dry $(ARGS)

clean: ## remove the virtual environment and local run outputs
	rm -rf $(VENV) runs .pytest_cache
