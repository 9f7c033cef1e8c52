"""A method's output folder remembers the settings it was started with.

``yct prune`` and ``yct distill`` resume a run whose state they find in ``--out``, so that an
interrupted run continues exactly. Resuming with other settings would silently continue the
old run under the new run's name (the old fine-tuning epochs, the old target): the folder's
``run_settings.json`` records what the run was started with, and a later command whose
settings differ is refused with the first difference, before anything loads or trains.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

FILE = "run_settings.json"
# where a run's files live and how it is computed, not what it computes
_NOT_SETTINGS = frozenset({"out", "workers", "device", "cache"})


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))  # tuples, paths: as JSON holds them


def settings_of(method: str, train: Any, config: Any) -> dict[str, Any]:
    fields = {k: v for k, v in dataclasses.asdict(train).items() if k not in _NOT_SETTINGS}
    own = dataclasses.asdict(config) if config is not None else {}
    return _plain({"method": method, "train": fields, method: own})


def _first_difference(old: Any, new: Any, where: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where
                                      else key)  # fmt: skip
            if found:
                return found
        return None
    return None if old == new else f"{where}: {json.dumps(old)} then, {json.dumps(new)} now"


def check_or_record(out: str | Path, method: str, train: Any, config: Any) -> None:
    """Record the settings of a new run in ``out``; refuse a resume whose settings differ."""
    path = Path(out) / FILE
    current = settings_of(method, train, config)
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
        difference = _first_difference(recorded, current, "")
        if difference:
            raise ValueError(f"{path}: {Path(out)} holds a run started with other settings "
                             f"({difference}); run it with its own settings to resume it, "
                             "or choose another --out")  # fmt: skip
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=1, sort_keys=True))
