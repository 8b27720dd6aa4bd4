# sio-gateway: `make demo` and `make test` each do the whole set-up (idempotent) and run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := softhsm2 opensc p11-kit opencryptoki swtpm swtpm-tools libtpm2-pkcs11-1 \
	libtss2-tcti-swtpm0
# Debian registers tpm2-pkcs11 with p11-kit, so every process loading p11-kit-proxy would
# probe for a TPM (and print TCTI errors); it is loaded directly instead (ADR 0001).
P11KIT_TPM2_OVERRIDE := /etc/pkcs11/modules/tpm2_pkcs11.module
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
	@if [ -f /usr/share/p11-kit/modules/tpm2_pkcs11.module ] && \
	    ! grep -qs '^disable-in: p11-kit-proxy' $(P11KIT_TPM2_OVERRIDE); then \
	  $(SUDO) mkdir -p $(dir $(P11KIT_TPM2_OVERRIDE)) && \
	  printf '%s\n' '# sio-gateway (make system-deps): not behind p11-kit-proxy, see ADR 0001' \
	    'module: libtpm2_pkcs11.so' 'critical: no' 'disable-in: p11-kit-proxy' | \
	    $(SUDO) tee $(P11KIT_TPM2_OVERRIDE) >/dev/null; \
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
	$(PY) bench/gateway.py --gateway-token tpm2
	$(PY) bench/sessions.py
	$(PY) bench/screening.py
	$(PY) bench/fm1.py

clean:
	rm -rf $(VENV) var .pytest_cache
