"""Errors of two kinds: a cfg that cannot be a model (the user's input, named by file, line
and block), and a dependency failing inside its own machinery.

The ``yct`` command turns a :class:`DependencyError` into one line (``yct <cmd>: error: …``)
naming what failed and the versions involved, instead of a bare message such as ``cannot
pickle '_thread.lock' object`` that leaves the user guessing which library broke.
"""

from __future__ import annotations

from importlib import metadata


class CfgError(ValueError):
    """A cfg that cannot be a model; the message names file, line, block and the rule."""


def cfg_error(source: str, line: int, index: int | None, section: str, what: str) -> CfgError:
    where = f"{source}:{line}"
    if index is None:
        return CfgError(f"{where}: [{section}]: {what}")
    return CfgError(f"{where}: block {index} [{section}]: {what}")


class DependencyError(RuntimeError):
    """A library (Ray, Optuna, MLflow, torch) failed; the message names it and the versions."""


def versions(*distributions: str) -> str:
    """``"ray 2.60.0, optuna 5.1.0"`` for the installed distributions (absent ones say so)."""
    found = []
    for name in distributions:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def root_cause(exc: BaseException) -> str:
    """The innermost cause of ``exc`` as ``Type: first line`` (what actually went wrong)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        exc = inner
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
