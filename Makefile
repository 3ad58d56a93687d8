# One entry point for people and CI. Every target installs what it needs into .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.13: the venv uses it when the machine has it (PATH or pyenv),
# and `sam build` then finds python3.13 in the venv's bin.
PYTHON ?= $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' 2>/dev/null && command -v python3.13 \
	|| (command -v pyenv >/dev/null 2>&1 && v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13' | tail -1) && [ -n "$$v" ] && echo "$$(pyenv root)/versions/$$v/bin/python3.13") \
	|| command -v python3)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv lint fmt typecheck sam-validate sam-build unit pytest test browser screenshots dev receiver bench openapi token clean

$(BIN)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

sam-validate: venv
	$(BIN)/sam validate --lint

sam-build: venv
	$(BIN)/sam build --cached --parallel

pytest: venv
	$(BIN)/python -m pytest

# The dashboard's browser tests drive Debian's chromium through chromium-driver: installed when missing
# (CI runs as root). Elsewhere, without root, they are named; outside CI the browser tests then skip.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "install the browser: sudo apt-get install chromium chromium-driver"; fi; }

# The dashboard's browser tests, writing their screenshots where the README shows them.
screenshots: venv browser
	DASHBOARD_SCREENSHOTS=docs $(BIN)/python -m pytest tests/e2e/test_dashboard_browser.py -q

# The whole suite, exactly what CI runs (the layer just built is checked too).
test: lint sam-validate sam-build browser
	REQUIRE_SAM_BUILD=1 $(BIN)/python -m pytest

dev: venv
	$(BIN)/python -m devstack

receiver: venv
	$(BIN)/python -m devstack.receiver

bench: venv
	$(BIN)/python -m bench

# Regenerates docs/openapi.json from the API handler (a test checks it is in step).
openapi: venv
	$(BIN)/python scripts/openapi.py

# Creates a bearer token for ACCOUNT on a deployed stack: make token ACCOUNT=acme STACK=webhooks-dev
token: venv
	$(BIN)/python scripts/create_token.py --stack $(STACK) --account $(ACCOUNT)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
