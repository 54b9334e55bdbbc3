PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Empty (`PORT=` in the environment) means the default, as for gunicorn and the health check.
override PORT := $(or $(strip $(PORT)),8000)

.PHONY: run test lint format schema schema-check messages install migrate check-container bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# `make run` needs only the service's own packages; tests, lint and tools add requirements-dev.txt.
$(VENV)/.installed-run: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.installed-run requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: $(VENV)/.installed-run
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py createcachetable

run: migrate
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# docker-compose.yml through the real Compose implementation, the Dockerfile through hadolint; no Docker engine needed.
check-container: install
	PYTHON=$(BIN)/python bin/check-container

# The OpenAPI document, validated; any generator warning fails. tests/test_openapi.py fails when it is stale.
schema: install
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py spectacular --lang en --file docs/openapi.yaml --validate --fail-on-warn

schema-check: install
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py spectacular --lang en --file .openapi.check.yaml --validate --fail-on-warn
	diff -u docs/openapi.yaml .openapi.check.yaml; status=$$?; rm -f .openapi.check.yaml; exit $$status

# Russian messages: extract into locale/ru (then translate the new entries) and compile. Needs GNU gettext.
messages: install
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py makemessages -l ru --no-location
	DEBUG=$${DEBUG-1} $(BIN)/python manage.py compilemessages -l ru --ignore .venv

# Needs PostgreSQL (DATABASE_URL's server, else 127.0.0.1:5432 user postgres) and wrk; see docs/benchmarks.md.
bench: install
	$(BIN)/python -m bench.run --report docs/benchmarks.md --cpu
