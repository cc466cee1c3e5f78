# lunar: run the service, its tests and its benchmarks with the standard library only.
PYTHON ?= python3
SUPPORTED_VERSIONS := 3.9 3.10 3.11 3.12 3.13

.PHONY: run test test-all bench bench-quick clean

run:
	$(PYTHON) lunar_server.py

test:
	$(PYTHON) -m tests

# Run the suite on every supported CPython found through pyenv or as
# pythonX.Y on PATH; fail if any fails or if none is found. A candidate must
# start: an inactive pyenv shim on PATH does not count.
test-all:
	@found=0; failed=""; \
	for version in $(SUPPORTED_VERSIONS); do \
	  interpreter=""; \
	  if command -v pyenv >/dev/null 2>&1; then \
	    match=$$(pyenv versions --bare 2>/dev/null | grep -E "^$$version\.[0-9]+$$" | sort -t. -k3 -n | tail -1); \
	    if [ -n "$$match" ]; then interpreter="$$(pyenv root)/versions/$$match/bin/python"; fi; \
	  fi; \
	  if [ -z "$$interpreter" ]; then interpreter=$$(command -v python$$version 2>/dev/null || true); fi; \
	  if [ -z "$$interpreter" ] || ! "$$interpreter" -c "import sys" >/dev/null 2>&1; then \
	    echo "test-all: CPython $$version not found, skipped"; continue; \
	  fi; \
	  found=$$((found + 1)); \
	  echo "test-all: CPython $$version ($$interpreter)"; \
	  "$$interpreter" -m tests || failed="$$failed $$version"; \
	done; \
	if [ "$$found" -eq 0 ]; then echo "test-all: no supported CPython found"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "test-all: failed on$$failed"; exit 1; fi; \
	echo "test-all: passed on $$found versions"

bench:
	$(PYTHON) -m tests.benchmarks

bench-quick:
	$(PYTHON) -m tests.benchmarks --quick

clean:
	rm -rf build .coverage
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
