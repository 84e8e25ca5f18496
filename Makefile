# Warden: `make demo` runs the main job, `make test` the whole suite.
# Both install what they need (idempotently) on a fresh Debian machine as root.
SHELL := /bin/bash
CARGO ?= cargo
DEBIAN_PACKAGES := bubblewrap util-linux python3 coreutils procps
BIN := target/release

.PHONY: all build deps test demo bench lint clean

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

test: deps build
	$(CARGO) test --release --workspace -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps build
	$(BIN)/warden bench run

demo: deps build
	@scripts/demo.sh

clean:
	$(CARGO) clean
