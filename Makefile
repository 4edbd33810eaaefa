# reeltable: `make run` serves the demo, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
FLASK := $(BIN)/flask --app app
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: help install db run serve test test-postgres lint format clean bench stress
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[test,dev]"
	touch $@

install: $(VENV)/.installed ## Create .venv and install the app

db: install ## Create or migrate the database, then load the demo data if empty
	$(FLASK) db upgrade
	$(FLASK) seed

run: db ## Serve the demo catalogue on http://$(HOST):$(PORT) (development server)
	$(FLASK) run --host $(HOST) --port $(PORT)

# Workers, threads and read/write timeouts, and why, are in the config file: idle
# and slow clients wait on threads of their own while the app serves one request at
# a time per worker (issue 11). The bench and tests/test_serving.py serve from it too.
GUNICORN_CONF := app/gunicorn_conf.py

serve: db ## Serve with gunicorn (2 workers), as in production
	$(BIN)/gunicorn --config $(GUNICORN_CONF) --bind $(HOST):$(PORT) --access-logfile - \
	  --access-logformat '%(h)s "%(r)s" %(s)s %(b)s %(M)sms id=%({x-request-id}o)s' 'app:create_app()'

test: $(VENV)/.installed-test ## Run every test: tests/ (Flask client) and e2e/ (Chromium)
	$(BIN)/python -m e2e.browser
	$(BIN)/pytest tests e2e

test-postgres: $(VENV)/.installed-test ## Run tests/ against PostgreSQL ($$PG_TEST_URL)
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest tests

lint: $(VENV)/.installed-test ## ruff check, ruff format --check, mypy (app/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-test ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# W7 (editor open) drives a real Chromium, so the bench needs the test tools too.
bench: $(VENV)/.installed-test ## Measure reeltable against Datasette, Flask-Admin, sqlite-web (BENCH_ARGS=--quick)
	$(BIN)/python -m e2e.browser
	$(BIN)/python -m bench $(BENCH_ARGS)

stress: $(VENV)/.installed ## Load + kill -9 test, SQLite then PostgreSQL (STRESS_ARGS=--seconds 60)
	$(BIN)/python -m bench.stress $(STRESS_ARGS)

clean: ## Remove the virtualenv and caches (keeps instance/ and its database)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
