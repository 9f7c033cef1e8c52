# One command each for a fresh clone: `make test`, `make demo`. Both build .venv if missing.
PYTHON ?= python3
VENV ?= .venv
# GPU users: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo demo-dense cluster-smoke lint bench clean

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
DEMO_DENSE ?= runs/demo/dense/best.pt
DEMO_NAME ?= demo-$(shell date +%Y%m%d-%H%M%S)

# The demo: a real multi-objective study (LTH vs CS from one dense yolov3-tiny, NSGA-II,
# 2 trials at a time on local Ray, MLflow in ./mlruns.db), then its front. ~10 min on 2 cores.
demo: $(DEMO_DENSE)
	$(BIN)/yct tune search_spaces/demo.yaml --name $(DEMO_NAME) --storage runs/demo/tune \
		--report-dir runs/demo/$(DEMO_NAME)

$(DEMO_DATA)/data.yaml: | $(STAMP)
	$(BIN)/yct data demo $(DEMO_DATA) --images 500 --size 128
	$(BIN)/yct data check $(DEMO_DATA)/data.yaml

# the dense model the demo prunes (search_spaces/demo.yaml starts every trial from it)
$(DEMO_DENSE): $(STAMP) $(DEMO_DATA)/data.yaml configs/demo_dense_hyp.yaml
	$(BIN)/yct train yolov3-tiny --data $(DEMO_DATA)/data.yaml --img-size 96 --width 0.5 \
		--epochs 60 --batch 16 --accumulate 1 --eval-interval 10 \
		--hyp configs/demo_dense_hyp.yaml --out $(dir $(DEMO_DENSE)) --quiet

demo-dense: $(DEMO_DENSE)

# cluster-local.yaml brought up for real on 127.0.0.1 (own sshd, throwaway key), a 2-trial
# study through `ray exec`, checked in the head's MLflow, then `ray down`. Runs `ray stop`.
cluster-smoke: $(STAMP)
	VENV=$(abspath $(VENV)) bash tests/cluster/cluster_smoke.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/profile_zoo.py
	$(BIN)/python bench/data_loader.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
