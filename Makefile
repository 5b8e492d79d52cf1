# Lutèce: `make demo` and `make test` each do all of their own set-up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is rebuilt when the dependencies change, so a second run installs nothing.
STAMP  := $(VENV)/.installed

.PHONY: all setup demo test sample clean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/system-deps.sh
	PYTHON=$(PYTHON) bash .ci/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lutece doctor
	$(BIN)/lutece sample generate build/demo/district --overwrite
	$(BIN)/lutece pipeline run lidar-to-2d --input build/demo/district/district.laz --output build/demo/products
	@echo "Products in build/demo/products; open build/demo/products/report.html in a browser."

test: $(STAMP)
	$(BIN)/python -m pytest

# Regenerates the committed sample district (deterministic: same seed, same files).
sample: $(STAMP)
	$(BIN)/lutece sample generate sample_data/district --overwrite

clean:
	rm -rf build .pytest_cache
