# Thin wrappers so that the README's two commands also work on a fresh
# machine: they seed the prebuilt V8 and install the linker first.

.PHONY: dev test tools

# Build in release mode and serve fixtures/hello on http://127.0.0.1:8787/.
dev: tools
	cargo run --release --locked -- dev fixtures/hello/worker.js

# Every test. The integration tests also run the outpost binary, so it is
# built first; the compatibility tests run real npm packages, installed
# first by scripts/npm-fixtures.sh; and the control plane's tests need
# PostgreSQL: a local one is started (installed first if missing) unless
# OUTPOST_TEST_DATABASE_URL names one.
test: tools
	scripts/npm-fixtures.sh
	cargo build --locked -p outpost
	OUTPOST_TEST_DATABASE_URL="$${OUTPOST_TEST_DATABASE_URL:-$$(scripts/start-postgres.sh)}" \
		cargo test --workspace --locked

# V8 comes prebuilt from ../shared/v8 where it exists (machines without
# internet); elsewhere the v8 crate downloads it. mold is the linker named in
# .cargo/config.toml.
tools:
	@if [ -f ../shared/v8/install.sh ]; then sh ../shared/v8/install.sh; fi
	@command -v mold >/dev/null || scripts/install-mold.sh
