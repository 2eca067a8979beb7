# Two commands do everything on a fresh machine:
#   make demo   set up, then run the main job on a simulated board
#   make test   set up, then run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench clean

$(STAMP): pyproject.toml requirements.lock package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	npm ci --silent --no-audit --no-fund
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m tools.typecheck
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup

demo: setup
	$(VENV)/bin/blinpump demo

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) node_modules build
