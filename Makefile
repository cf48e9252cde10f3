# Two commands do all set-up on a fresh machine:
#   make run   create .venv, install, build the demo database on first start, launch the dashboard
#   make test  install what the tests need and run them all
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DB     ?= $(if $(MLOPS_DB),$(MLOPS_DB),mlops.duckdb)
PORT   ?= 8501
# The dashboard listens on this address only. 127.0.0.1 (the default) keeps it to this machine; serving other
# hosts (HOST=0.0.0.0) exposes the login to the network: put it behind TLS first (docs/security.md).
HOST   ?= 127.0.0.1

.PHONY: run test test-duckdb test-postgres lint demo demo-cluster screenshots bench soak clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	# The editable install builds with the venv's own setuptools (no isolated build env): a fresh venv's bundled
	# setuptools may predate the built-in bdist_wheel that PEP 660 needs, so bring it to the pinned version first.
	$(PY) -m pip install -q --disable-pip-version-check "setuptools>=70.1"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The tests also need the optional engines (Spark, PostgreSQL); `make run` does not install them.
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-spark.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-spark.txt
	touch $@

run: $(VENV)/.installed
	test -f "$(DB)" || $(PY) -m mlops_core demo --db "$(DB)"
	$(PY) -m mlops_core users bootstrap --db "$(DB)"
	MLOPS_DB="$(DB)" $(VENV)/bin/streamlit run dashboard.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true

# The demo with its metadata on a local PostgreSQL cluster and its log as Parquet files, in .demo-cluster/ (kept
# between starts); needs Debian's postgresql package. Serves the dashboard from it until Ctrl-C.
demo-cluster: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-postgres.txt
	$(PY) -m mlops_core.demo.cluster .demo-cluster --host $(HOST) --port $(PORT)

demo: $(VENV)/.installed
	$(PY) -m mlops_core demo --db "$(DB)" --force

# The whole suite on DuckDB files, then the tests that touch the store again with the metadata on PostgreSQL (a
# throwaway local cluster; tests/conftest.py keeps only the tests that use a database fixture). Either failing
# fails `make test`; PYTEST_ARGS applies to both.
test: test-duckdb test-postgres

test-duckdb: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Ordered after test-duckdb so that `make -j` does not run the two suites at once on a small machine.
test-postgres: lint $(if $(filter test,$(MAKECMDGOALS)),test-duckdb)
	MLOPS_TEST_BACKEND=postgres $(PY) -m pytest -q $(PYTEST_ARGS)

# The layering (import contracts in pyproject.toml), the style and the public API's types.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

screenshots: $(VENV)/.installed-dev
	MLOPS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/test_browser.py

# Kill -9 fault injection at length: each operation killed at 25 random moments (tests/test_faults.py).
soak: $(VENV)/.installed-dev
	MLOPS_FAULT_TRIALS=25 $(PY) -m pytest -q tests/test_faults.py

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
