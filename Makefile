# robopost — the two set-up commands:
#   make run    create .venv, install robopost, start the live demo (console on http://127.0.0.1:8000)
#   make test   create .venv with the test tools, install the Debian packages the tests need
#               (as root; otherwise say which), then ruff, import contracts, mypy and pytest
# Re-runs are fast: pip runs again only when setup.py changes (stamp files in .venv).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= tests/
SYSTEM_PACKAGES := mosquitto postgresql chromium socat fonts-wqy-microhei
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help run test system-deps lint typecheck pytest clean

help:
	@echo "make run    start the live demo (sample campus): console on http://127.0.0.1:8000"
	@echo "make test   install what the tests need, then lint, type-check and run the test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-run: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,ros,bench]'
	touch $@ $(VENV)/.stamp-run

# The live demo (launch/demo.py): broker, orchestrator, elevator bridges, simulated lifts and robots at
# 10x real time on the sample campus; Ctrl-C stops every process. DEMO_ARGS adds options, e.g.
# DEMO_ARGS="--time-factor 20 --broker embedded".
DEMO_ARGS ?=
# socat makes the pseudo-terminal pairs of the simulated Modbus lift and the carts' locker boards:
# installed when missing (as root; otherwise the command to run is printed). Mosquitto is optional.
run: $(VENV)/.stamp-run
	scripts/system-deps.sh socat
	$(BIN)/robopost demo $(DEMO_ARGS)

system-deps:
	scripts/system-deps.sh $(SYSTEM_PACKAGES)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy maps interfaces orchestrator launch elevator_bridge robots sim

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
pytest: $(VENV)/.stamp-test
	rc=0; $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; \
	exit $$rc

test: $(VENV)/.stamp-test
	$(MAKE) --no-print-directory system-deps
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .import_linter_cache
