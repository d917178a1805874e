# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow test-reliability test-deploy demo clean notebooks bench bench-data bench-train bench-learn browser-deps test-browser quality-deps bench-quality bench-recipe bench-sound

# The stamp is newer than every requirements file once the install has succeeded. The install
# also compiles the native step engine (setup.py, serving/csrc) with the system's gcc.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.py $(wildcard serving/csrc/*.c serving/csrc/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# Two workers (pytest-xdist), a test module to each in turn, so module fixtures are built once.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

# What `make test` leaves out because it is inherently slow (longer training, several processes,
# SIGKILL loops, the largest exports): the same coverage, run by .ci/run after `make test`.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow --durations=10 -p no:cacheprovider

# Faults, fuzzing and load (issue #9): a SIGKILL loop over training, 10,000 fuzzed audio files,
# Schemathesis against the server's OpenAPI schema, and a loopback load test. About 6 minutes.
test-reliability: $(STAMP)
	$(PY) -m pytest -m reliability -s -p no:cacheprovider

# The deployment install (issue #14): a fresh virtual environment from requirements-serving.txt
# plus the project without its dependencies runs generate, serve, evaluate and bench, no TensorFlow.
test-deploy: $(STAMP)
	$(PY) -m pytest -m deploy -p no:cacheprovider

# Debian's Chromium and playwright-core (no browser download): for the web page's test.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	cd tests/browser && npm install --no-audit --no-fund --silent

# Debian's FluidSynth, its General-MIDI soundfont and eSpeak NG: the real-audio quality benchmark's
# instruments and voices (rendered at run time; nothing large is committed).
quality-deps:
	command -v fluidsynth >/dev/null && command -v espeak-ng >/dev/null && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fluidsynth fluid-soundfont-gm espeak-ng)

# Real-audio quality (issue #16): music21 pieces on sampled instruments, `small` trained for a budget of
# CPU time, held-out bits/sample beside LPC-32 and unigram baselines, and listener measures of
# generated audio beside the held-out audio's. QUALITY_CPU_MINUTES=8 make bench-quality for a shorter run;
# QUALITY_SPEAKER_CPU_MINUTES / QUALITY_MEL_CPU_MINUTES add the speaker- and mel-conditioned runs on espeak-ng voices.
QUALITY_CPU_MINUTES ?= 30
QUALITY_SPEAKER_CPU_MINUTES ?= 0
QUALITY_MEL_CPU_MINUTES ?= 0
bench-quality: $(STAMP) quality-deps
	$(VENV)/bin/wavenet bench-quality --out bench_out/quality --cpu-minutes $(QUALITY_CPU_MINUTES) \
		--speaker-cpu-minutes $(QUALITY_SPEAKER_CPU_MINUTES) --mel-cpu-minutes $(QUALITY_MEL_CPU_MINUTES)

# Training-recipe levers (issue #16): `small` trained once per lever (warm-up + cosine decay, learning rate,
# clipping, target length, batch size, input encoding, bfloat16) for RECIPE_CPU_MINUTES of CPU each, one
# after the other, on bench-quality's instruments; held-out bits/sample beside a baseline run of the
# defaults. Table on stdout; bench_out/recipe/recipe.json and one run per lever in bench_out/recipe/runs/.
RECIPE_CPU_MINUTES ?= 5
bench-recipe: $(STAMP) quality-deps
	$(VENV)/bin/wavenet bench-recipe --out bench_out/recipe --cpu-minutes $(RECIPE_CPU_MINUTES)

# The sound (issue #21): the built-in melodies trained as `make demo` trains them, bench-quality's
# instruments and the mel-conditioned vocoder on voices, each generated for several seeds and draws and
# measured beside its held-out audio (level, periodicity, voicing, F0 error, flatness). About 75 minutes;
# SOUND_SUITES=melodies make bench-sound takes a few (judge a lever: wavenet bench-sound --suites melodies --lever ...).
SOUND_SUITES ?= melodies,instruments,vocoder
SOUND_CPU_MINUTES ?= 30
bench-sound: $(STAMP) quality-deps
	$(VENV)/bin/wavenet bench-sound --out bench_out/sound --suites $(SOUND_SUITES) \
		--instrument-cpu-minutes $(SOUND_CPU_MINUTES) --vocoder-cpu-minutes $(SOUND_CPU_MINUTES)

test-browser: $(STAMP) browser-deps
	$(PY) -m pytest -m browser -p no:cacheprovider

demo: $(STAMP)
	$(VENV)/bin/wavenet demo --out demo_out

# The compendium: regenerate every notebooks/NN_*.ipynb from its jupytext source and execute it
# at full size (20–25 minutes on 2 shared cores: notebook 07 trains two models for 3 CPU-minutes
# each). `make test` executes them small.
notebooks: $(STAMP)
	$(PY) notebooks/build.py

clean:
	rm -rf demo_out .pytest_cache notebooks/_work

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

# Generation speed: `small`, `realtime` and the mel-conditioned `vocoder` trained briefly on the
# same built-in melodies (speed does not depend on the weights' quality), held-out bits/sample
# side by side, exported, then `wavenet bench` on each bundle: the native engine and the
# standard step graph in the same run, against naive generation. About 15 minutes on 2 cores.
BENCH_TRAIN := --epochs 4 --steps-per-epoch 60 --target-length 2048 --batch-size 8 --learning-rate 0.003 \
	--val-split 0.25 --audio-every 0 --cache-dir bench_out/cache
bench: $(STAMP)
	$(VENV)/bin/wavenet data builtin bench_out/melodies16k --files 16 --seconds 4 --sample-rate 16000
	$(VENV)/bin/wavenet data builtin bench_out/heldout16k --files 4 --seconds 2 --sample-rate 16000 --seed 1
	for preset in small realtime vocoder; do \
		rm -rf bench_out/$$preset-run && \
		$(VENV)/bin/wavenet train bench_out/melodies16k --out bench_out/$$preset-run --preset $$preset $(BENCH_TRAIN) && \
		$(VENV)/bin/wavenet evaluate bench_out/$$preset-run --cache-dir bench_out/cache && \
		$(VENV)/bin/wavenet export bench_out/$$preset-run --out bench_out/$$preset --verify || exit 1; \
	done
	$(VENV)/bin/wavenet bench bench_out/small --seconds 3
	$(VENV)/bin/wavenet bench bench_out/realtime --seconds 3
	$(VENV)/bin/wavenet bench bench_out/vocoder --seconds 3
	$(VENV)/bin/wavenet bench-levers bench_out/small --audio bench_out/heldout16k
