# Quick start: `make demo` (set up and run the categorical VAE on the
# embedded digits data) and `make test` (the suite under every backend).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKENDS ?= tensorflow jax torch
# The CPU wheel of PyTorch; a bare `torch` pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test install install-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[tensorflow,examples]"

install-test: $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[tensorflow,jax,examples,test]" ruff

demo: install
	KERAS_BACKEND=tensorflow $(BIN)/python examples/categorical_vae.py \
		--output-dir outputs/categorical_vae

test: install-test
	@status=0; for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q $(PYTEST_ARGS) \
			|| status=1; \
	done; exit $$status

lint: install-test
	$(BIN)/ruff check keras_latent tests examples benchmarks
	$(BIN)/ruff format --check keras_latent tests examples benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
