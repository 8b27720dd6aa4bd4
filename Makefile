# sio-gateway: `make demo` and `make test` each do the whole set-up (idempotent) and run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := softhsm2 opensc p11-kit
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps venv demo test test-fast lint protos bench clean

setup: system-deps venv

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

protos: venv
	$(PY) protos/generate.py

demo: setup
	$(PY) -m siogw.demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy siogw siogw_api signing audit softhsm clients server

bench: setup
	$(PY) bench/sign.py
	$(PY) bench/audit.py
	$(PY) bench/gateway.py
	$(PY) bench/screening.py
	$(PY) bench/fm1.py

clean:
	rm -rf $(VENV) var .pytest_cache
