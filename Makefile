# Warden: `make demo` runs the main job, `make test` the whole suite.
# Both install what they need (idempotently) on a fresh Debian machine as root.
SHELL := /bin/bash
CARGO ?= cargo
DEBIAN_PACKAGES := bubblewrap util-linux mount e2fsprogs python3 python3-venv python3-pip python-is-python3 coreutils procps mmdebstrap curl runsc \
	python3-pandas python3-openpyxl python3-matplotlib python3-pypdf python3-reportlab
BIN := target/release
# The init is linked statically: it starts once per sandbox, and a static
# binary skips the dynamic loader (a few hundred microseconds). Built for an
# explicit --target so the flag never reaches build scripts or proc-macros.
HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
# The official E2B SDKs, pinned, for the compatibility tests and the E2B
# benchmark: Python in a virtualenv under target/, JS in tests/e2b/js
# (npm ci from the committed lock). Each is reinstalled only when its pins
# change. (Set before the rules: prerequisites expand as they are read.)
E2B_VENV := target/e2b-venv
E2B_JS := tests/e2b/js
# Integrations that wrap the E2B SDK (langchain-e2b), pinned, run with their
# defaults against Warden.
E2B_INTEG_VENV := target/e2b-integrations-venv
E2B_NODE_MIN := 20
# The official MCP Python SDK, pinned, as the client of the MCP server's tests.
MCP_VENV := target/mcp-venv
# Warden's own Python SDK, installed from sdk/python (as a user would) with
# its test tools pinned; reinstalled when its sources change.
SDK_PY_VENV := target/sdk-python-venv
SDK_PY_SRC := sdk/python/pyproject.toml $(wildcard sdk/python/src/warden_sdk/*.py)
# Warden's own TypeScript SDK: its pinned dev tools (npm ci), then built
# with tsc into sdk/typescript/dist; rebuilt when its sources change.
# The web console's browser test: Debian's chromium and chromedriver, and
# Selenium pinned in a virtualenv.
CONSOLE_VENV := target/console-venv
SDK_TS := sdk/typescript
SDK_TS_SRC := $(SDK_TS)/package.json $(SDK_TS)/package-lock.json $(SDK_TS)/tsconfig.json $(wildcard $(SDK_TS)/src/*.ts)

.PHONY: all build deps test demo bench bench-e2b bench-sdk e2b-sdk e2b-integrations mcp-sdk sdk-python sdk-typescript console-test lint clean

all: build

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build:
	$(CARGO) build --release --workspace --bins
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p warden-init --target $(HOST_TRIPLE)
	install -m 0755 target/$(HOST_TRIPLE)/release/warden-init $(BIN)/warden-init-static

test: deps build image e2b-sdk e2b-integrations mcp-sdk sdk-python sdk-typescript console-test
	$(CARGO) test --release --workspace -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps build
	$(BIN)/warden bench run

# Sandbox.create() -> commands.run("true") -> kill() through the Python SDK
# against an in-process server on loopback (not part of `make bench`).
bench-e2b: deps build $(E2B_VENV)/.installed
	$(BIN)/warden bench e2b --python $(E2B_VENV)/bin/python --script tests/e2b/bench.py

# Sandbox create -> exec -> delete through Warden's own SDKs next to the
# same requests as plain HTTP, in each language (not part of `make bench`).
bench-sdk: deps build sdk-python sdk-typescript
	$(BIN)/warden bench sdk

# The official E2B SDKs, pinned (below).

e2b-sdk: deps $(E2B_VENV)/.installed $(E2B_JS)/node_modules/.installed

$(E2B_VENV)/.installed: tests/e2b/requirements.txt
	rm -rf $(E2B_VENV)
	python3 -m venv $(E2B_VENV)
	$(E2B_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

e2b-integrations: deps $(E2B_INTEG_VENV)/.installed

$(E2B_INTEG_VENV)/.installed: tests/e2b/integrations/requirements.txt
	rm -rf $(E2B_INTEG_VENV)
	python3 -m venv $(E2B_INTEG_VENV)
	$(E2B_INTEG_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

mcp-sdk: deps $(MCP_VENV)/.installed

$(MCP_VENV)/.installed: tests/mcp/requirements.txt
	rm -rf $(MCP_VENV)
	python3 -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

sdk-python: deps $(SDK_PY_VENV)/.installed

$(SDK_PY_VENV)/.installed: sdk/python/requirements-test.txt $(SDK_PY_SRC)
	rm -rf $(SDK_PY_VENV) sdk/python/build
	python3 -m venv $(SDK_PY_VENV)
	$(SDK_PY_VENV)/bin/pip install -q --disable-pip-version-check -r sdk/python/requirements-test.txt
	$(SDK_PY_VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation ./sdk/python
	rm -rf sdk/python/build
	touch $@

# Debian's own nodejs is too old on bookworm (the SDK needs Node >= 20.18);
# a newer one already on the machine (e.g. NodeSource's) is used as it is.
$(E2B_JS)/node_modules/.installed: $(E2B_JS)/package.json $(E2B_JS)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@v=$$(node -p 'process.versions.node.split(".")[0]'); \
	if [ "$$v" -lt $(E2B_NODE_MIN) ]; then \
	  echo "the e2b npm package needs Node >= $(E2B_NODE_MIN) (found $$(node --version))" >&2; exit 1; fi
	cd $(E2B_JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console-test: deps $(CONSOLE_VENV)/.installed
	@for p in chromium chromium-driver; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(CONSOLE_VENV)/.installed: tests/console/requirements.txt
	rm -rf $(CONSOLE_VENV)
	python3 -m venv $(CONSOLE_VENV)
	$(CONSOLE_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

sdk-typescript: deps $(SDK_TS)/node_modules/.built

# (The E2B JS install checks for, or installs, a Node new enough.)
$(SDK_TS)/node_modules/.built: $(SDK_TS_SRC) $(E2B_JS)/node_modules/.installed
	cd $(SDK_TS) && npm ci --no-audit --no-fund --loglevel=error && rm -rf dist && npm run --silent build
	touch $@

demo: deps build image
	@scripts/demo.sh

# The python-data sandbox image (`warden run --image /var/cache/warden/images/python-data`,
# or $WARDEN_IMAGES_DIR/python-data): built from images/python-data/packages
# with mmdebstrap (a minute or two), then a one-line no-op until the recipe changes.
.PHONY: image
image: deps
	@scripts/build-image.sh python-data

clean:
	$(CARGO) clean
