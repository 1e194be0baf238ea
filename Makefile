# Two commands on a fresh machine: `make demo` runs the main job, `make test` passes the tests.
# Everything is installed by these targets; nothing is expected to be installed by hand.

PYTHON ?= python3
VENV := .venv
COMPAT := .venv-compat
# --no-cache-dir: the compat venv's CUDA wheels (~3 GB) would otherwise stay in ~/.cache/pip too,
# and CI machines share their disk (a run once failed with ENOSPC installing .venv-compat).
PIP_FLAGS := --disable-pip-version-check --progress-bar off -q --no-cache-dir

# torch==2.13.0 takes the local CPU wheel; any other spec pulls GBs of CUDA wheels.
TORCH_MAIN := torch==2.13.0
# Composer 0.32.1 needs torch<2.7.1 + torchvision; mosaicml-streaming 0.13.0 imports torchvision.
COMPAT_PINS := torch==2.7.0 torchvision==0.22.0 mosaicml==0.32.1 mosaicml-streaming==0.13.0 litdata webdataset

.PHONY: install azurite compat-venv lint test test-main test-compat test-slow demo bench experiments clean

install: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -U pip
	$(VENV)/bin/pip install $(PIP_FLAGS) $(TORCH_MAIN) -e '.[s3,gcs,oci,azure,lightning,recipes,experiments,spark,ray,hf,test]'
	@touch $@

# Azurite (Azure Blob emulator) for the storage tests, installed into the venv, not the repo.
AZURITE := $(VENV)/azurite/node_modules/.bin/azurite-blob
azurite: $(AZURITE)

$(AZURITE): | $(VENV)/.stamp
	mkdir -p $(VENV)/azurite
	cd $(VENV)/azurite && npm install --no-audit --no-fund --silent azurite@3.37.0

compat-venv: $(COMPAT)/.stamp

$(COMPAT)/.stamp: pyproject.toml
	@df -h . /tmp | sed 's/^/disk before .venv-compat: /'
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install $(PIP_FLAGS) -U pip
	$(COMPAT)/bin/pip install $(PIP_FLAGS) $(COMPAT_PINS)
	$(COMPAT)/bin/pip install $(PIP_FLAGS) torch==2.7.0 -e '.[recipes,experiments,test]'
	@touch $@

lint: install
	$(VENV)/bin/ruff check streaming_lightning recipes tests benchmarks experiments train.py
	$(VENV)/bin/ruff format --check streaming_lightning recipes tests benchmarks experiments train.py
	$(VENV)/bin/mypy

test-main: install azurite
	SL_REQUIRE_SERVERS=1 $(VENV)/bin/python -m pytest -m "not compat and not slow" --ignore=tests/compat -q
	# The dataset tests again, two at a time (xdist): jobs sharing a machine collide on nothing.
	SL_REQUIRE_SERVERS=1 $(VENV)/bin/python -m pytest -n 2 -m "not slow" -q -p no:cacheprovider tests/dataset

# Lightning is not installed in .venv-compat (it runs in .venv): its tests are not collected.
test-compat: compat-venv
	SL_REQUIRE_COMPAT=1 $(COMPAT)/bin/python -m pytest -m compat -q --ignore=tests/integrations/lightning

# The fast suites (about 16 minutes on 2 cores once the venvs exist).
test: lint test-main test-compat

# The slower suites (chaos kills, long fuzzing, memory soak, DDP and multi-node runs): CI runs
# them after `make test` (.ci/run).
test-slow: install azurite
	SL_REQUIRE_SERVERS=1 $(VENV)/bin/python -m pytest -m "slow and not compat" --ignore=tests/compat -q

demo: install
	$(VENV)/bin/python -m recipes.demo

bench: install compat-venv  # every case, every library; then docs/benchmarks.md from the results
	$(COMPAT)/bin/python -m benchmarks
	$(VENV)/bin/python -m benchmarks convert  # Spark and Ray live in .venv only
	$(COMPAT)/bin/python -m benchmarks.report

experiments: install compat-venv  # every experiment; docs/figures/*, docs/experiments.md, README block
	$(VENV)/bin/python -m experiments

clean:
	rm -rf $(VENV) $(COMPAT) *.egg-info .pytest_cache .mypy_cache .ruff_cache
