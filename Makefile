# `make run` and `make test` bootstrap everything they need from a bare Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := build/acme-auth

.PHONY: run test install bench clean format-blueprints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Generate the example spec and serve it on the embedded SQLite default.
run: install
	$(BIN)/authgen generate example-user.yaml -o $(EXAMPLE)
	$(BIN)/python -m pip install --quiet -e $(EXAMPLE)
	cd $(EXAMPLE) && ../../$(BIN)/python -m acme_auth serve --host 127.0.0.1 --port 5000

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build

# Black over the blueprints' Python, template expressions included (tools/format_blueprints.py).
format-blueprints: install
	$(BIN)/python tools/format_blueprints.py
