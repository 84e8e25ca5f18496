# Warden: `make demo` runs the main job, `make test` the whole suite.
# Both install what they need (idempotently) on a fresh Debian machine as root.
SHELL := /bin/bash
CARGO ?= cargo
DEBIAN_PACKAGES := bubblewrap util-linux python3 coreutils procps mmdebstrap curl runsc \
	python3-pandas python3-openpyxl python3-matplotlib python3-pypdf python3-reportlab
BIN := target/release
# The init is linked statically: it starts once per sandbox, and a static
# binary skips the dynamic loader (a few hundred microseconds). Built for an
# explicit --target so the flag never reaches build scripts or proc-macros.
HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')

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
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p warden-init --target $(HOST_TRIPLE)
	install -m 0755 target/$(HOST_TRIPLE)/release/warden-init $(BIN)/warden-init-static

test: deps build image
	$(CARGO) test --release --workspace -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps build
	$(BIN)/warden bench run

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
