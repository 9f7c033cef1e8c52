#!/usr/bin/env bash
# tools/fresh_env.sh DIR: a throwaway venv in DIR with the newest releases pyproject allows
# (torch from $TORCH_SPEC first, then the project with its dev and aws extras). Used by `make lock`
# (which freezes DIR into requirements.lock) and `make test-latest` (which tests in DIR).
set -euo pipefail
dir=$1
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
rm -rf "$dir"
"$python" -m venv "$dir"
# --quiet keeps pip's own output down; what it resolved is printed at the end
"$dir/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# shellcheck disable=SC2086  # TORCH_SPEC may carry its own flags (--index-url …)
"$dir/bin/python" -m pip install --quiet $torch_spec
"$dir/bin/python" -m pip install --quiet -e '.[dev,aws]'
"$dir/bin/python" -m pip check
