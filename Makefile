# The two commands of the README:
#   make run    set up (Debian packages, .venv) and run reconciler on the bundled desired-state/
#   make test   set up, then every check: ruff, mypy --strict, import-linter, schema freshness, pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test setup system-packages lint typecheck layers schema-check glue-coverage unit bench clean install

# The agent, once, on the bundled example published as a local git repository, as node demo: it runs the
# example's loopback proxy app, prints the plan and what runs (listeners, targets, health), and stops.
run: setup
	$(BIN)/reconciler validate desired-state
	$(BIN)/reconciler run --once --node demo --state-dir .run/state \
		--repo "$$(scripts/example-repo .run)"

test: setup lint typecheck layers schema-check glue-coverage unit

setup: $(VENV)/.installed

system-packages:
	@scripts/install-debian-packages debian-packages.txt

$(VENV)/.installed: pyproject.toml debian-packages.txt | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install -q -e . --group dev
	touch $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

schema-check:
	$(BIN)/reconciler schema --check
	$(BIN)/reconciler validate desired-state >/dev/null

# The capability glue and appliers must be checkable without root: the unit tests alone (no namespace, no outside
# program) cover at least 80 % of them.
glue-coverage:
	$(BIN)/pytest -q tests/unit --cov=reconciler.capabilities --cov=reconciler.appliers \
		--cov-report=term --cov-fail-under=80

unit:
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/tick.py
	$(BIN)/python bench/proxy.py
	$(BIN)/python bench/egress.py
	$(BIN)/python bench/logscan.py
	$(BIN)/python bench/edges.py
	$(BIN)/python bench/status_fleet.py
	$(BIN)/python bench/console_nodes.py

# A virtualenv of its own in PREFIX (the systemd units expect /opt/reconciler), the command in PREFIX/bin, and
# the deployment files in PREFIX/share/reconciler.
PREFIX ?= /opt/reconciler
install: system-packages
	$(PYTHON) -m venv $(PREFIX)/venv
	$(PREFIX)/venv/bin/python -m pip install -q --upgrade 'pip>=25.1'
	$(PREFIX)/venv/bin/python -m pip install -q .
	mkdir -p $(PREFIX)/bin $(PREFIX)/share/reconciler
	ln -sf ../venv/bin/reconciler $(PREFIX)/bin/reconciler
	cp -r runtime $(PREFIX)/share/reconciler/

clean:
	rm -rf $(VENV) .run .mypy_cache .pytest_cache .ruff_cache .hypothesis .coverage
