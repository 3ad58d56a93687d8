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

.PHONY: venv lint fmt typecheck sam-validate sam-build unit pytest test test-servers dev receiver bench openapi token return-path parse-mail clean

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

pytest: venv test-servers
	$(BIN)/python -m pytest

# The real server software tests/unit/test_real_servers.py starts, installed from Debian when missing
# (as root, or through sudo); RUNLEVEL=1 keeps the package from starting a system-wide nginx.
test-servers:
	@if ! { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y nginx-light nodejs; \
	fi

# The whole suite, exactly what CI runs (the layer just built is checked too).
test: lint sam-validate sam-build test-servers
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

# The return path of MESSAGE of ACCOUNT for the local stack's secret: make return-path ACCOUNT=acme MESSAGE=msg-1
return-path: venv
	$(BIN)/python scripts/return_path.py --account "$(ACCOUNT)" --message "$(MESSAGE)"

# The events returned mail would make, one JSON line per file (no AWS): make parse-mail FILES="a.eml b.eml"
parse-mail: venv
	$(BIN)/python scripts/parse_mail.py $(FILES)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
