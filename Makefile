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

.PHONY: setup packages venv demo test lint unit integration bench clean

setup: packages venv

# Debian packages the builders, the registry and the tests need (skipped when all present).
packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: setup
	$(SOCLE) up --builder $(BUILDER)
	$(SOCLE) build -c $(EXAMPLE) --builder $(BUILDER)
	$(SOCLE) plan -c $(EXAMPLE)

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: setup lint
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

unit: venv
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q -m integration

bench: setup
	$(PY) bench/plan_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
