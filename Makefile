# Every target bootstraps its own virtualenv, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint typecheck unit soak bench crds image image-lock cluster cluster-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The main job on the embedded default: a DuckDB warehouse of 100,000 demo profiles (created once
# in .demo/), the demo application (the HubSpot twin), `sluice local examples/demo --once`.
demo: $(STAMP)
	@$(BIN)/python -m sluice.demo.session

# The same, then `sluice local` keeps running with the API on 127.0.0.1:8080 until Ctrl-C.
serve: $(STAMP)
	@$(BIN)/python -m sluice.demo.session --serve

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks image
	$(BIN)/ruff format --check operator tests benchmarks image

typecheck: $(STAMP)
	$(BIN)/mypy operator benchmarks

# Includes tests/e2e, which start a real Kubernetes control plane (tests/cluster.py); the first
# run builds its binaries from source into SLUICE_CACHE (default ~/.cache/sluice), printing
# its progress. Those cluster tests, and tests/reliability, run beside the others
# (tests/parallel.py).
unit: $(STAMP)
	@bash scripts/ensure-packages.sh
	$(BIN)/python -m tests.parallel

# Not in CI: tests/reliability with ten times the kill points and generated inputs (about
# ten times as long); SOAK=N for another factor.
soak: $(STAMP)
	SLUICE_SOAK=$(or $(SOAK),10) $(BIN)/pytest tests/reliability

bench: $(STAMP)
	@status=0; for bench in benchmarks/bench_*.py; do \
		echo "== $$bench"; $(BIN)/python $$bench || status=1; \
	done; exit $$status

# The CRDs, for kubectl/Flux/Argo CD users (crds/) and for the chart (helm/sluice/files/crds/).
crds: $(STAMP)
	$(BIN)/sluice crds --output crds/
	$(BIN)/sluice crds --output helm/sluice/files/crds/

# Sluice's container image as an OCI archive, build/sluice-<version>.oci.tar (docs/image.md).
image: $(STAMP)
	@$(BIN)/python -m image.build

# Re-pin the image's Debian packages and Python dependencies (image/*.lock).
image-lock: $(STAMP)
	@$(BIN)/python -m image.lock

# A local control plane that outlives the command, with a node running Sluice's image where
# this machine allows (root, Debian's packages), for trying the operator and the chart by hand.
cluster: $(STAMP)
	@bash scripts/ensure-packages.sh
	$(BIN)/python -m tests.cluster up

cluster-down: $(STAMP)
	$(BIN)/python -m tests.cluster down

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis .demo
	rm -rf build
