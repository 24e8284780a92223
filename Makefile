# The two commands: `make serve` and `make test`. Both install whatever is missing first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
DEFAULT_MODEL := qwen2.5-coder-1.5b
TEST_MODEL := qwen2.5-coder-0.5b
# llama.cpp is built by workbench/llama_build.py with -DGGML_NATIVE=OFF and explicit ISA flags (AMX off):
# a native build is not portable and crashes on CPUs with AMX.
# LLAMA_VARIANT=haswell (AVX2 only) etc. overrides the llama.cpp build chosen from the CPU's flags.
LLAMA_VARIANT ?=
# torch's CPU build for the memory's embeddings. The lock pins torch==X+cpu, which PyPI does not serve: a
# machine without the wheel on disk (pip's find-links) sets TORCH_INDEX=https://download.pytorch.org/whl/cpu.
TORCH_INDEX ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system venv llama weights smoke toolchain serve lab lab-kernel notebooks-html test test-fast test-slow bench lock clean-venv llama-rebuild screenshots docs docs-serve

setup: system venv llama weights toolchain smoke

system:
	@bash scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=25' wheel
	@# llama.cpp first, built portably (never -march=native, never AMX): the lock's pin is then satisfied,
	@# so pip never builds (or takes from its cache) a native wheel.
	@LLAMA_VARIANT=$(LLAMA_VARIANT) $(BIN)/python workbench/llama_build.py install
	@# torch before sentence-transformers, pinned to its CPU build: resolved alone, torch pulls GB of CUDA.
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$$(grep -E '^torch==' requirements.lock)"
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# Checks the installed build against this CPU and the build record on every run (a file read when it fits).
llama: venv
	@LLAMA_VARIANT=$(LLAMA_VARIANT) $(BIN)/python workbench/llama_build.py install

llama-rebuild: venv
	@LLAMA_VARIANT=$(LLAMA_VARIANT) $(BIN)/python workbench/llama_build.py install --rebuild

weights: venv
	@$(BIN)/workbench models pull $(DEFAULT_MODEL)
	@$(BIN)/workbench models pull $(TEST_MODEL)

# One short generation per model in a child process: a build that crashes on this CPU stops setup here
# with one line (signal, CPU features, the rebuild command), not later as a bare "Segmentation fault".
smoke: llama weights
	@$(BIN)/workbench models smoke $(DEFAULT_MODEL) $(TEST_MODEL)

toolchain: venv
	@if [ -f scripts/setup-toolchain.sh ]; then bash scripts/setup-toolchain.sh; fi

serve: setup
	$(BIN)/workbench serve

# JupyterLab on 127.0.0.1:LAB_PORT (no browser; its log prints the URL with the token) with the `workbench`
# kernel: the venv's Python, with WORKBENCH_HOME and WORKBENCH_MODELS_DIR as this shell resolves them.
LAB_PORT ?= 8888
KERNEL_PREFIX ?= $(VENV)
lab: venv lab-kernel
	$(BIN)/python scripts/lab.py serve --port $(LAB_PORT)

# Registers (or refreshes) the kernel spec under KERNEL_PREFIX/share/jupyter/kernels/workbench.
lab-kernel:
	@$(BIN)/python scripts/lab.py kernel --prefix $(KERNEL_PREFIX)

test: setup
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not browser"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# The README's pictures, from a real `workbench demo` workload in a temporary home (tests never write them).
screenshots: setup
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

# The documentation site (mkdocs.yml): the generated references refreshed, then a strict build into
# artifacts/site (a broken link fails it); docs-serve serves it with live reload at http://127.0.0.1:8000.
docs: venv
	$(BIN)/python scripts/gen_docs.py
	$(BIN)/mkdocs build --strict

docs-serve: venv
	$(BIN)/python scripts/gen_docs.py
	$(BIN)/mkdocs serve

# The notebooks run in a temporary home on the small local model (a few minutes), rendered with their outputs
# and plots to docs/notebooks/*.html for the documentation site (tests never write them).
notebooks-html: setup
	$(BIN)/python scripts/render_notebooks.py

# The quick benchmarks; humaneval.py and agent_tasks.py take hours / half an hour: run them by hand.
LONG_BENCHMARKS := benchmarks/humaneval.py benchmarks/agent_tasks.py
bench: setup
	@for b in $(filter-out $(LONG_BENCHMARKS),$(wildcard benchmarks/[a-z]*.py)); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip install -q -e '.[test,bench,memory]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	$(BIN)/python scripts/gen_environment.py

clean-venv:
	rm -rf $(VENV)
