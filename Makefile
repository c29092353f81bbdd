# Quick start: `make demo` (set up and run the categorical VAE on the
# embedded digits data) and `make test` (the suite under every backend).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKENDS ?= tensorflow jax torch
# The CPU wheel of PyTorch; a bare `torch` pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Two workers: the suite is CPU-bound (compilation, statistical tests), and
# CI machines have two cores.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: demo test install install-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[tensorflow,examples]"

# Test-only references, installed after the CPU wheel of PyTorch that
# `entmax` needs: the `entmax` package (sparsemax and entmax by their
# authors) and the ONNX tools that check `model.export(format="onnx")`.
TEST_REFERENCES ?= entmax==1.3 onnx==1.23.2 onnxscript==0.7.2 \
	onnxruntime==1.32.0

install-test: $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[tensorflow,jax,examples,test]" ruff
	$(BIN)/pip install --quiet $(TEST_REFERENCES)

# The demo's own folder: a second `make demo` replaces the first one's files.
demo: install
	KERAS_BACKEND=tensorflow $(BIN)/python examples/categorical_vae.py \
		--output-dir outputs/categorical_vae --overwrite

test: install-test
	@status=0; for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q \
			-n $(PYTEST_WORKERS) $(PYTEST_ARGS) \
			|| status=1; \
	done; exit $$status

lint: install-test
	$(BIN)/ruff check keras_latent tests examples benchmarks
	$(BIN)/ruff format --check keras_latent tests examples benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
