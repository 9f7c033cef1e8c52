# One command each for a fresh clone: `make test`, `make demo`. Both build .venv if missing.
PYTHON ?= python3
VENV ?= .venv
# GPU users: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

DEMO_DATA ?= demo_data

demo: $(STAMP)
	test -f $(DEMO_DATA)/data.yaml || $(BIN)/yct data demo $(DEMO_DATA) --images 500 --size 128
	$(BIN)/yct data check $(DEMO_DATA)/data.yaml
	$(BIN)/yct info --zoo --img-size 416 --latency-runs 3

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/profile_zoo.py
	$(BIN)/python bench/data_loader.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
