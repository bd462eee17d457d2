# trilemma: two commands on a fresh machine.
#   make run    # the default toy profile end to end (snakemake --cores all), results in results/toy/
#   make test   # the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PROFILE ?= toy
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: run dry-run test test-fast test-faults report-html dvc.yaml check-config clean-results help

help:
	@echo "make run [PROFILE=name]      run the pipeline (snakemake --cores all); default profile: toy"
	@echo "make dry-run [PROFILE=name]  print snakemake's dry run"
	@echo "make test                    run the test suite (tests/)"
	@echo "make test-fast               the tests without the end-to-end DAG runs"
	@echo "make test-faults             the long fault-injection run (README \"What survives what\")"
	@echo "make report-html             snakemake --report results/\$$PROFILE/report.html"
	@echo "make dvc.yaml                regenerate the params files, the config schema and the DVC front-ends"

# The environment: torch 2.14.1 + torchvision 0.29.1 (torch-fidelity needs a torchvision that imports).
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e ".[test]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	touch $@

run: $(STAMP)
	snakemake --cores all --config profile=$(PROFILE)
	@# Record what snakemake built in dvc.lock (so `dvc status dvc.yaml` agrees), unless nothing under results/toy
	@# is newer than dvc.lock: `dvc commit` re-hashes every stage (about 35 s for the toy's 286 stages).
	@# The DVC front-ends are refreshed first (a new grid entry after a config edit: README "DVC"),
	@# then DVC's own `code` stage runs (the per-job code files, src/trilemma/stages/dvc_code.py).
	@if [ "$(PROFILE)" = "toy" ]; then \
	  if [ ! -f dvc.lock ] || [ -n "$$(find results/toy params.yaml config src/trilemma -type f ! -name '*.pyc' -newer dvc.lock -print -quit)" ]; then \
	    trilemma config --write && trilemma dvc-yaml --all && dvc repro --quiet --single-item code && dvc commit --force --no-relink --quiet dvc.yaml \
	      && echo "dvc.lock updated: dvc status agrees with the snakemake run"; \
	  else echo "dvc.lock is up to date: nothing in results/toy is newer"; fi; fi

dry-run: $(STAMP)
	snakemake --cores all --dry-run --config profile=$(PROFILE)

test: $(STAMP)
	pytest

test-fast: $(STAMP)
	pytest -m "not slow and not faults_long"

# The long fault-injection run (30 whole-pipeline kills, ...); `make test` runs the short version.
test-faults: $(STAMP)
	pytest -s -m faults_long tests/faults

report-html: $(STAMP)
	snakemake --cores 1 --config profile=$(PROFILE) --report results/$(PROFILE)/report.html

check-config: $(STAMP)
	trilemma check-config --profile $(PROFILE)

dvc.yaml: $(STAMP)
	trilemma config --write && trilemma dvc-yaml --all
