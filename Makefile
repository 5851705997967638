# Studio — one target per habit. `make demo` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MO := locale/zh_Hans/LC_MESSAGES/django.mo
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo run test test-unit test-integration test-postgres test-browser lint format bench bench-smoke clean clean-results

# The virtualenv is rebuilt only when the dependency pins change, so a second run is quick.
$(STAMP): pyproject.toml requirements.lock bin/find-python
	@python=$$(bin/find-python) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
		rm -rf $(VENV); echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

# The Chinese catalogue is compiled with Babel (pure Python: no system gettext needed).
$(MO): locale/zh_Hans/LC_MESSAGES/django.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -D django -d locale -l zh_Hans

setup: $(STAMP) $(MO)

demo: setup
	@$(PY) -m studio.launcher demo

run: setup
	@$(PY) -m studio.launcher run

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DOTENV=0 $(VENV)/bin/mypy .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Everything CI runs: lint, the unit and integration tests on SQLite, the database tests again on
# PostgreSQL (when it answers; with CI=true it must), and the browser tests.
# The PostgreSQL pass is busy on the processor while the browser pass mostly waits on chromium
# and the stack: side by side they take about the time of the longer one.
test: clean-results lint test-unit test-integration
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-postgres test-browser
	@$(MAKE) --no-print-directory bench-smoke
	@$(PY) bin/test-summary $(RESULTS)

RESULTS := var/test-results
PYTEST = DJANGO_DOTENV=0 $(PY) -m pytest -p no:cacheprovider --junitxml=$(RESULTS)/$@.xml

clean-results:
	@rm -rf $(RESULTS)

test-unit: setup
	$(PYTEST) tests/unit -q

test-integration: setup
	$(PYTEST) tests/integration -q

# The per-family job tests (test_media_jobs_<family>.py) check relay formats, not the database:
# they run once, on SQLite. The job lifecycle, gallery, quotas, usage, chat, staff pages and the
# scaled mode run on both.
PG_IGNORE = --ignore-glob='tests/integration/test_media_jobs_*.py'

test-postgres: setup
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "PostgreSQL answers: running the database tests on it"; \
		DATABASE_URL=$(PG_URL) $(PYTEST) tests/integration -q -m django_db $(PG_IGNORE); \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(PG_URL) does not answer (CI=true: that is a failure)"; exit 1; \
	else \
		echo "PostgreSQL at $(PG_URL) does not answer: skipping the PostgreSQL run"; \
	fi

test-browser: setup
	$(PYTEST) tests/browser -q

bench: setup
	@for script in bench/*.py; do echo "== $$script"; DJANGO_DOTENV=0 $(PY) $$script $(BENCH_ARGS) || exit 1; done

# A quick pass over every benchmark so none of them rots (figures from it mean little).
bench-smoke:
	@$(MAKE) --no-print-directory bench BENCH_ARGS=--smoke

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
