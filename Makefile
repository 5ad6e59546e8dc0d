# `make run` and `make test` bootstrap everything they need from a bare Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := build/acme-auth
# `make run PORT=8000 HOST=0.0.0.0`
HOST ?= 127.0.0.1
PORT ?= 5000

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
	cd $(EXAMPLE) && ../../$(BIN)/python -m acme_auth serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q -n auto --dist worksteal

bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build

# Black over the blueprints' Python, template expressions included (tools/format_blueprints.py).
format-blueprints: install
	$(BIN)/python tools/format_blueprints.py
