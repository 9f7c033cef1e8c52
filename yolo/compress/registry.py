"""The methods by name. Adding a method is adding its module to ``MODULES``."""

from __future__ import annotations

from functools import cache

from yolo.compress import cs, dense, distill, lth, structured
from yolo.compress.method import Method

MODULES = (dense, lth, cs, structured, distill)


@cache
def _methods() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for module in MODULES:
        for method in module.METHODS:
            if method.name in found:
                raise ValueError(f"method '{method.name}' is defined twice ({module.__name__})")
            found[method.name] = method
    return found


def method_names() -> list[str]:
    return sorted(_methods())


def get_method(name: str) -> Method:
    methods = _methods()
    if name not in methods:
        raise ValueError(f"unknown method '{name}'; valid methods: {', '.join(sorted(methods))}")
    return methods[name]


def methods_of_command(command: str) -> list[Method]:
    return [m for m in _methods().values() if m.command == command]
