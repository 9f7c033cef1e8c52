"""Trainables by method name: a duplicate name raises, an unknown one lists the valid ones."""

from __future__ import annotations

from trainables.base import MethodTrainable

_REGISTRY: dict[str, type[MethodTrainable]] = {}


def register(cls: type[MethodTrainable]) -> type[MethodTrainable]:
    if cls.name in _REGISTRY:
        raise ValueError(
            f"trainable '{cls.name}' is already registered by {_REGISTRY[cls.name].__name__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def get_trainable(name: str) -> type[MethodTrainable]:
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method '{name}'; valid methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def trainable_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # importing a method's module registers it
    import trainables.distill
    import trainables.methods  # noqa: F401
