# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test demo clean bench-data bench-train bench-learn browser-deps test-browser

# The stamp is newer than every requirements file once the install has succeeded.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# Debian's Chromium and playwright-core (no browser download): for the web page's test.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	cd tests/browser && npm install --no-audit --no-fund --silent

test-browser: $(STAMP) browser-deps
	$(PY) -m pytest -m browser -p no:cacheprovider

demo: $(STAMP)
	$(VENV)/bin/wavenet demo --out demo_out

clean:
	rm -rf demo_out .pytest_cache

bench-data: $(STAMP)
	$(VENV)/bin/wavenet bench-data --preset small

bench-train: $(STAMP)
	$(VENV)/bin/wavenet bench-train

# "It learns": tiny on 16 built-in melodies for 1,200 steps, then bits/sample on held-out files.
bench-learn: $(STAMP)
	$(VENV)/bin/wavenet data builtin bench_out/melodies --files 16 --seconds 8 --sample-rate 8000
	rm -rf bench_out/learn
	$(VENV)/bin/wavenet train bench_out/melodies --out bench_out/learn --preset tiny --epochs 12 \
		--steps-per-epoch 100 --target-length 1024 --batch-size 16 --learning-rate 0.003 \
		--val-split 0.25 --audio-every 4 --cache-dir bench_out/cache
	$(VENV)/bin/wavenet evaluate bench_out/learn --cache-dir bench_out/cache
