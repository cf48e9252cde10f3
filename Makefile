# Two commands do all set-up on a fresh machine:
#   make run   create .venv, install, build the demo database on first start, launch the dashboard
#   make test  install what the tests need and run them all
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DB     ?= $(if $(MLOPS_DB),$(MLOPS_DB),mlops.duckdb)
PORT   ?= 8501

.PHONY: run test demo screenshots bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	test -f "$(DB)" || $(PY) -m mlops_core demo --db "$(DB)"
	MLOPS_DB="$(DB)" $(VENV)/bin/streamlit run dashboard.py --server.port $(PORT) --server.headless true

demo: $(VENV)/.installed
	$(PY) -m mlops_core demo --db "$(DB)" --force

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q $(PYTEST_ARGS)

screenshots: $(VENV)/.installed-dev
	MLOPS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/test_browser.py

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
