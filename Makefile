# One command each for a fresh clone: `make test`, `make demo`. Both build .venv if missing.
PYTHON ?= python3
VENV ?= .venv
# GPU users: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every install comes from this lock of exact versions (`make lock` refreshes it on purpose).
LOCK := requirements.lock

.PHONY: venv test test-latest lock demo demo-dense nas-parents cluster-smoke lint bench bench-nas bench-search ui-check clean

venv: $(STAMP)

# torch first (TORCH_SPEC picks the build), then exactly the lock, nothing resolved: --no-deps
# everywhere and no build isolation (the editable install builds with the locked setuptools).
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/check_python.py $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps $$(grep -E '^pip==' $(LOCK))
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve the newest releases pyproject allows into a throwaway venv and freeze it into the
# lock. Then run `make test` (it rebuilds .venv from the new lock) and commit the lock.
lock:
	TORCH_SPEC="$(TORCH_SPEC)" PYTHON=$(PYTHON) tools/fresh_env.sh .venv-lock
	.venv-lock/bin/python tools/write_lock.py .venv-lock/bin/python $(LOCK)
	rm -rf .venv-lock

# The study tests on the newest releases pyproject allows (not the lock): tells whether
# today's Ray / Optuna / MLflow / torch still work before anyone locks them.
LATEST_TESTS ?= tests/trainables tests/search_spaces
test-latest:
	TORCH_SPEC="$(TORCH_SPEC)" PYTHON=$(PYTHON) tools/fresh_env.sh .venv-latest
	.venv-latest/bin/python -m pip list --format freeze | grep -i -E '^(torch|ray|optuna|mlflow|numpy|onnxruntime)=='
	.venv-latest/bin/python -m pytest -q $(LATEST_TESTS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The MLflow UI in a real headless Chromium over a real study's store (also part of `make
# test`), keeping its screenshots in bench/results/ui/. Needs Debian's chromium and
# chromium-driver (`apt-get install chromium chromium-driver`; .ci/run installs them).
ui-check: $(STAMP)
	YCT_UI_SHOTS=bench/results/ui $(BIN)/python -m pytest -q -rs tests/ui

DEMO_DATA ?= demo_data
DEMO_DENSE ?= runs/demo/dense/best.pt
DEMO_NAME ?= demo-$(shell date +%Y%m%d-%H%M%S)
# Training is bit-for-bit repeatable for one lock and one thread count, but the float sums of
# a 1-thread and a 2-thread conv differ: the demo pins its threads so that every machine trains
# the same dense model (Ray gives each 1-CPU trial 1 thread already, so trials need no pin).
DEMO_THREADS ?= 2
DEMO_ENV := OMP_NUM_THREADS=$(DEMO_THREADS) MKL_NUM_THREADS=$(DEMO_THREADS)

# The demo: a real multi-objective study (LTH vs CS from one dense yolov3-tiny, TPE,
# 2 trials at a time on local Ray, MLflow in ./mlruns.db), then its front. ~10 min on 2 cores.
demo: $(DEMO_DENSE)
	$(BIN)/yct tune search_spaces/demo.yaml --name $(DEMO_NAME) --storage runs/demo/tune \
		--report-dir runs/demo/$(DEMO_NAME)

$(DEMO_DATA)/data.yaml: | $(STAMP)
	$(BIN)/yct data demo $(DEMO_DATA) --images 500 --size 128
	$(BIN)/yct data check $(DEMO_DATA)/data.yaml

# the dense model the demo prunes (search_spaces/demo.yaml starts every trial from it)
$(DEMO_DENSE): $(STAMP) $(DEMO_DATA)/data.yaml configs/demo_dense_hyp.yaml
	$(DEMO_ENV) $(BIN)/yct train yolov3-tiny --data $(DEMO_DATA)/data.yaml --img-size 96 --width 0.5 \
		--epochs 60 --batch 16 --accumulate 1 --eval-interval 10 \
		--hyp configs/demo_dense_hyp.yaml --out $(dir $(DEMO_DENSE)) --quiet

demo-dense: $(DEMO_DENSE)

# The parents the NAS spaces (search_spaces/nas_*.yaml) inherit their candidates' weights from:
# yolov3-mobile and yolo-nano at full size, 96 px, trained once (~5 min each on 2 cores).
NAS_PARENTS := runs/nas/mobile/best.pt runs/nas/nano/best.pt
runs/nas/mobile/best.pt: $(STAMP) $(DEMO_DATA)/data.yaml configs/demo_dense_hyp.yaml
	$(DEMO_ENV) $(BIN)/yct train yolov3-mobile --data $(DEMO_DATA)/data.yaml --img-size 96 \
		--epochs 60 --batch 16 --accumulate 1 --eval-interval 10 \
		--hyp configs/demo_dense_hyp.yaml --out $(dir $@) --quiet
runs/nas/nano/best.pt: $(STAMP) $(DEMO_DATA)/data.yaml configs/demo_dense_hyp.yaml
	$(DEMO_ENV) $(BIN)/yct train yolo-nano --data $(DEMO_DATA)/data.yaml --img-size 96 \
		--epochs 60 --batch 16 --accumulate 1 --eval-interval 10 \
		--hyp configs/demo_dense_hyp.yaml --out $(dir $@) --quiet

nas-parents: $(NAS_PARENTS)

# cluster-local.yaml brought up for real on 127.0.0.1 (own sshd, throwaway key), a 2-trial
# study through `ray exec`, checked in the head's MLflow, then `ray down`. Runs `ray stop`.
cluster-smoke: $(STAMP)
	VENV=$(abspath $(VENV)) bash tests/cluster/cluster_smoke.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every figure the README quotes, with the command that produced it (~2 h on 2 cores); each
# script writes bench/results/NAME.json with the lock's sha256 and the versions it ran under.
# The search-efficiency table (hours of real trials) is its own target: bench-search.
bench: $(STAMP) $(DEMO_DENSE)
	$(BIN)/python bench/profile_zoo.py --img-size 416 --runs 10
	$(BIN)/python bench/data_loader.py --images 200 --img-size 416 --batch 8 --epochs 2
	$(BIN)/python bench/trial_memory.py
	$(BIN)/python bench/tune_overhead.py
	$(BIN)/python bench/tune_overhead.py --samplers nsga2 --seeds 0 1 --img-size 160
	$(BIN)/python bench/train_demo.py --budget-min 15 --models yolov3-tiny yolo-nano --img-size 128
	$(BIN)/python bench/prune_demo.py --rounds 4 --epochs 6 --cs-epochs 9 --retrain-epochs 6
	$(BIN)/python bench/distill_demo.py --epochs 30 --seeds 0 1

# the architecture-search figures (~40 min; needs the NAS parents)
bench-nas: $(STAMP) runs/nas/mobile/best.pt
	$(BIN)/python bench/nas.py --candidates 10 --epochs 3 --seeds 0 1 2 --budget 36

# the replay's table of real trials (~25 min), the replay at 480 reports (~1 h), and at 240
# reports with real confirming studies (~45 min)
bench-search: $(STAMP) $(DEMO_DENSE)
	$(BIN)/python bench/record_trials.py --trials 160
	$(BIN)/python bench/search_efficiency.py --seeds 30 --budget 480 --startup-trials 4
	$(BIN)/python bench/search_efficiency.py --seeds 10 --budget 240 --startup-trials 4 \
		--confirm --out bench/results/search_efficiency_b240.json

clean:
	rm -rf $(VENV) .venv-lock .venv-latest build *.egg-info .pytest_cache
