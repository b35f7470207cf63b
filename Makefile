# socle — two commands on a fresh Debian 12 machine:
#   make demo   set up, start the local stack and build the bundled example
#   make test   set up, lint, type-check and run every test (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SOCLE := $(VENV)/bin/socle
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := docker.io docker-registry buildah skopeo mmdebstrap uidmap busybox-static \
	python3-venv
EXAMPLE ?= examples/enterprise/catalog.yaml
BUILDER ?= buildah
INTEROP := tests/interop/sigstore
# The demo's signing key lives outside git; its passphrase is for the demo only.
DEMO_KEY := .socle/demo-signing
export SOCLE_PASSWORD ?= socle-demo

.PHONY: setup packages venv interop demo test lint unit integration bench clean

setup: packages venv

# Debian packages the builders, the registry and the tests need (skipped when all present).
packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The reference Sigstore verifier (JavaScript) that proves socle's signatures interoperate.
interop: $(INTEROP)/node_modules/.package-lock.json

$(INTEROP)/node_modules/.package-lock.json: $(INTEROP)/package-lock.json
	@command -v npm >/dev/null || { echo "error: the Sigstore interop tests need Node.js >= 20.17 and npm"; exit 1; }
	npm ci --prefix $(INTEROP) --no-audit --no-fund --loglevel=error

$(DEMO_KEY).key: | venv
	mkdir -p $(dir $(DEMO_KEY))
	$(SOCLE) keygen --out $(DEMO_KEY)

demo: setup $(DEMO_KEY).key
	$(SOCLE) up --builder $(BUILDER)
	$(SOCLE) build -c $(EXAMPLE) --builder $(BUILDER) --sign-key $(DEMO_KEY).key --reports .socle/reports
	$(SOCLE) plan -c $(EXAMPLE)
	$(SOCLE) verify --key $(DEMO_KEY).pub 127.0.0.1:5000/my/legacy-app:1.0-tomcat10-java17

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: setup lint interop
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

unit: venv
	$(PY) -m pytest -q tests/unit

integration: setup interop
	$(PY) -m pytest -q -m integration

bench: setup
	$(PY) bench/plan_scale.py
	$(PY) bench/registry_plan.py
	$(PY) bench/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(INTEROP)/node_modules
