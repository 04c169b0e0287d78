# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: demo test test-sqlite test-pure-python test-postgres lint install clean

# The compiled request path (perfmonitor/capture/_speedups.c) is built by the install.
$(VENV)/.installed: pyproject.toml requirements-dev.txt perfmonitor/capture/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Migrates, creates an admin (printed), seeds the demo LMS, starts the web server,
# a Celery worker with beat and a traffic generator. SQLite and no other service
# by default; DATABASE_URL / REDIS_URL switch to PostgreSQL / Redis.
demo: $(VENV)/.installed
	$(PY) -m demo_project.run_demo

# The whole suite on SQLite, then on PostgreSQL when it answers (DATABASE_URL or
# localhost:5432). With PERFMONITOR_REQUIRE_SERVICES=1 a missing service fails.
test: $(VENV)/.installed
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-pure-python
	@if [ -n "$$DATABASE_URL" ] || [ "$$PERFMONITOR_REQUIRE_SERVICES" = 1 ] || \
	   $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	  $(MAKE) --no-print-directory test-postgres; \
	else echo "PostgreSQL not reachable: PostgreSQL pass skipped"; fi

test-sqlite: $(VENV)/.installed
	env -u DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)

# The capture tests again on the Python request path (what runs where the compiled
# module was not built).
test-pure-python: $(VENV)/.installed
	env -u DATABASE_URL PERFMONITOR_PURE_PYTHON=1 $(PY) -m pytest tests/capture \
	  tests/test_capture_smoke.py $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check perfmonitor tests demo_project benchmarks

clean:
	rm -rf $(VENV) .demo test-artifacts
