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

.PHONY: debian-packages venv lint fmt typecheck sam-validate sam-build unit pytest test screenshots dev receiver dlq bench openapi token tokens revoke-token return-path parse-mail clean

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

pytest: venv debian-packages
	$(BIN)/python -m pytest

# What the tests need from Debian, installed when missing (CI runs as root; elsewhere through sudo):
# nginx and Node (tests/unit/test_real_servers.py), chromium and its driver (the dashboard's browser
# tests), curl (the README's commands, run by tests/e2e/test_quick_start.py). RUNLEVEL=1 keeps the
# nginx package from starting a system-wide nginx.
DEBIAN_PACKAGES := nginx:nginx-light node:nodejs chromium:chromium chromedriver:chromium-driver curl:curl
debian-packages:
	@missing=""; for pair in $(DEBIAN_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || test -x "/usr/sbin/$${pair%%:*}" || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing from Debian:$$missing"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq $$missing; \
	fi

# The dashboard's browser tests, writing their screenshots where the README shows them.
screenshots: venv debian-packages
	DASHBOARD_SCREENSHOTS=docs $(BIN)/python -m pytest tests/e2e/test_dashboard_browser.py -q

# The whole suite, exactly what CI runs (the layer just built is checked too).
test: lint sam-validate sam-build debian-packages
	REQUIRE_SAM_BUILD=1 $(BIN)/python -m pytest

dev: venv
	$(BIN)/python -m devstack

# The demo receiver: make receiver [PORT=4000] [SECRET_FILE=.devstack/hook.json] (a file, not the secret
# itself: command lines are visible to everyone in ps).
receiver: venv
	$(BIN)/python -m devstack.receiver $(if $(PORT),--port "$(PORT)") $(if $(SECRET_FILE),--secret-file "$(SECRET_FILE)")

# What the local stack's dead-letter queues hold (make dev running; WEBHOOKS_MOTO_PORT as for make dev).
dlq: venv
	$(BIN)/python -m devstack.dlq

bench: venv
	$(BIN)/python -m bench

# Regenerates docs/openapi.json from the API handler (a test checks it is in step).
openapi: venv
	$(BIN)/python scripts/openapi.py

# Bearer tokens of a deployed stack (scripts/tokens.py). The stack and region are samconfig.toml's for
# CONFIG_ENV (default: default), as `sam deploy` uses them; STACK= and REGION= override them.
#   make token ACCOUNT=acme [DESCRIPTION=…]   make tokens [ACCOUNT=acme]   make revoke-token TOKEN_ID=…
CONFIG_ENV ?= default
TOKENS = $(BIN)/python scripts/tokens.py --config-env "$(CONFIG_ENV)" $(if $(STACK),--stack "$(STACK)") \
	$(if $(REGION),--region "$(REGION)")

token: venv
	@test -n "$(ACCOUNT)" || { echo "usage: make token ACCOUNT=<account> [DESCRIPTION=…]" >&2; exit 2; }
	$(TOKENS) create --account "$(ACCOUNT)" --description "$(DESCRIPTION)"

tokens: venv
	$(TOKENS) list $(if $(ACCOUNT),--account "$(ACCOUNT)")

revoke-token: venv
	@test -n "$(TOKEN_ID)" || { echo "usage: make revoke-token TOKEN_ID=<id from make tokens>" >&2; exit 2; }
	$(TOKENS) revoke "$(TOKEN_ID)"

# The return path of MESSAGE of ACCOUNT for the local stack's secret: make return-path ACCOUNT=acme MESSAGE=msg-1
return-path: venv
	$(BIN)/python scripts/return_path.py --account "$(ACCOUNT)" --message "$(MESSAGE)"

# The events returned mail would make, one JSON line per file (no AWS): make parse-mail FILES="a.eml b.eml"
parse-mail: venv
	$(BIN)/python scripts/parse_mail.py $(FILES)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
