# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   the local stack with real traffic and a report
#   make test   lint and every test
# Everything downloaded or built is cached under $(CACHE), keyed by version.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON311 ?= python3.11
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/seldon-feedback
VENV = $(shell $(PYTHON311) devstack/dev_env.py ensure)
PYTEST_ARGS ?=

.PHONY: demo test lint unit smoke images locks env go-tools browser servers clean-cache help

help:
	@echo "make demo   - run the local stack with real traffic and print a report"
	@echo "make test   - lint and run every test (starts and stops its own servers)"
	@echo "make lint   - ruff only"
	@echo "make unit   - tests that need no servers"
	@echo "make smoke  - the smoke suite (SMOKE_TARGET=<file> for a cluster, else a local stack)"
	@echo "make images - build the classifier, feedback and smoke-suite images here (buildah; as root)"
	@echo "make locks  - regenerate the images' hash-checked requirements.lock files from their requirements.txt"
	@echo "make env    - create the cached Python environment and print its path"
	@echo "make go-tools - build the simulated cluster and the Pulumi engine from Go modules (cached; make test needs it)"

env:
	@command -v $(PYTHON311) >/dev/null || { echo "error: $(PYTHON311) not found; install Python 3.11" >&2; exit 1; }
	@venv="$(VENV)"; test -n "$$venv" -a -x "$$venv/bin/python" || { echo "error: the Python environment could not be created (the reason is above); fix it and rerun make" >&2; exit 1; }; echo "$$venv"

# browser: headless Chromium for the HTML report's test and the demo's screenshot (Debian's chromium package)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get) for the report test and the demo's screenshot" >&2; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium is missing and this is not root: install Debian's chromium package" >&2; fi; }

demo: env browser
	$(VENV)/bin/python -m devstack demo $(DEMO_ARGS)

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# go-tools: etcd, Kubernetes, kwok, the Pulumi CLI, its Kubernetes provider and Prometheus, built once into
# $(CACHE)/go-tools
# (a warm run takes 0.1 s). A failed build prints one line naming the part and its build.log, and stops make.
# It and lint are independent: `make -j2 test` (what .ci/run runs) does both at once.
go-tools: env
	@$(VENV)/bin/python -m devstack.runtime.go_build build >/dev/null

test: lint go-tools browser
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

unit: env
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

# smoke: the post-deploy suite; against SMOKE_TARGET=<file> (or SMOKE_* variables), else a local stack it starts
smoke: env
	$(VENV)/bin/python -m pytest smoke_tests $(PYTEST_ARGS)

# images: build the three images from their Dockerfiles with buildah (installs buildah/mmdebstrap with apt as root)
images: env
	$(VENV)/bin/python -m devstack images build

# locks: pip-compile --generate-hashes of each image's requirements.txt into its requirements.lock (pip-tools, pinned
# in tools/locks.py, installed once into the cache; needs the package index). Run after editing a requirements.txt.
locks: env
	$(VENV)/bin/python -m tools.locks compile

clean-cache:
	rm -rf "$(CACHE)"
