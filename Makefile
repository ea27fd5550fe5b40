# RecoWorld — the two commands: `make demo` and `make test` (each creates .venv when missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Data packages: real MovieLens 100k (recbole) and CC0 film metadata (bokeh-sampledata).
# Installed without their dependencies: we only read their data files.
DATA_PKGS := recbole==1.2.1 bokeh-sampledata==2026.1

export OMP_NUM_THREADS ?= 1

.PHONY: demo test bench lint format clean install

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel that lies on the machine (a bare `torch` pulls CUDA).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(DATA_PKGS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/recoworld simulate --config experiments/configs/demo.yaml --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_world_vs_recsim.py

lint: $(STAMP)
	$(BIN)/ruff format --check recoworld tests benchmarks experiments
	$(BIN)/ruff check recoworld tests benchmarks experiments

format: $(STAMP)
	$(BIN)/ruff format recoworld tests benchmarks experiments
	$(BIN)/ruff check --fix recoworld tests benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache
