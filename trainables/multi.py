"""One study over several methods: each trial runs the trainable its ``method`` names."""

from __future__ import annotations

from typing import Any

from search_spaces.optuna_space import method_config
from trainables.registry import get_trainable


class MultiMethodTrainable:
    """Routes a multi-method trial config (``method`` + ``<method>.<param>`` keys) to that
    method's trainable, dropping settings only other methods take."""

    def __init__(self, methods: tuple[str, ...]) -> None:
        for method in methods:
            get_trainable(method)  # unknown names fail here, before any trial
        self.methods = methods
        self.__name__ = "+".join(methods)  # the trial names Ray shows

    def __call__(self, config: dict[str, Any]) -> None:
        method, own = method_config(config, self.methods)
        trainable = get_trainable(method)
        allowed = trainable.allowed_keys()
        trainable()({k: v for k, v in own.items() if k in allowed})
