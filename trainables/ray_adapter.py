"""Every ray.tune call of the project, in one module (Ray has moved this API three times).

Checked against the installed Ray (2.60): the function-trainable API ``tune.report(metrics,
checkpoint=Checkpoint.from_directory(...))`` and ``tune.get_checkpoint()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def in_session() -> bool:
    """True inside a Tune trial (a trainable can also run as a plain function)."""
    from ray import tune

    with warnings.catch_warnings():  # outside a trial Ray warns, then answers None
        warnings.simplefilter("ignore")
        try:
            return tune.get_context().get_trial_id() is not None
        except Exception:  # no session: Ray raises different types across versions
            return False


def report(metrics: dict[str, Any], checkpoint_dir: Path | None = None) -> None:
    """Report one result (and register ``checkpoint_dir`` as the trial's checkpoint)."""
    from ray import tune

    checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
    tune.report(metrics, checkpoint=checkpoint)


@contextmanager
def restored_checkpoint() -> Iterator[Path | None]:
    """The directory of the checkpoint this trial restarts from, or None on a fresh start."""
    from ray import tune

    checkpoint = tune.get_checkpoint() if in_session() else None
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as directory:
        yield Path(directory)


def trial_dir() -> Path | None:
    """This trial's local directory (where its working files live), if in a session."""
    from ray import tune

    return Path(tune.get_context().get_trial_dir()) if in_session() else None


def trial_name() -> str | None:
    from ray import tune

    return tune.get_context().get_trial_name() if in_session() else None
