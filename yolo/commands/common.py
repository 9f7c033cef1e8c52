"""What several commands share: a trained checkpoint with its class names, and a method's
settings from a config section overridden by flags."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo.compress.method import Method
from yolo.model import Darknet
from yolo.settings import OneOf, Setting
from yolo.zoo import ZOO_SIZE


@dataclass
class Trained:
    model: Darknet
    names: tuple[str, ...]
    img_size: int


def check_img_size(size: int) -> int:
    """``--img-size``: every head's grid needs a multiple of the largest stride (32)."""
    if size < 32 or size % 32:
        raise ValueError(f"--img-size must be a positive multiple of 32, got {size}")
    return size


def load_trained(path: str | Path) -> Trained:
    """A checkpoint with its class names (from training metadata, else numbered)."""
    from yolo.io import load_checkpoint

    checkpoint = load_checkpoint(path)
    model = checkpoint.model
    names = tuple(checkpoint.metadata.get("names") or
                  (f"class{i}" for i in range(model.num_classes)))  # fmt: skip
    if len(names) != model.num_classes:
        raise ValueError(
            f"{path}: metadata names {len(names)} classes, the model {model.num_classes}"
        )
    return Trained(model, names, int(checkpoint.metadata.get("img_size", ZOO_SIZE)))


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def add_method_options(parser: argparse.ArgumentParser, methods: Sequence[Method]) -> None:
    """One flag per setting of ``methods`` (from their config dataclasses: type, help,
    default); a setting two methods share gets one flag whose help names both."""
    by_flag: dict[str, list[tuple[Method, Setting]]] = {}
    for method in methods:
        for setting in method.settings:
            by_flag.setdefault(setting.flag, []).append((method, setting))
    group = parser.add_argument_group("method options (defaults: the seed's)")
    for flag, owners in by_flag.items():
        setting = owners[0][1]
        if len({(s.help, repr(s.default)) for _, s in owners}) == 1:
            names = ", ".join(m.name for m, _ in owners)
            text = f"{names}: {setting.help} ({_shown(setting.default)})"
        else:
            text = "; ".join(f"{m.name}: {s.help} ({_shown(s.default)})" for m, s in owners)
        metavar = "PATH" if setting.file else _METAVARS.get(setting.kind, "TEXT")
        kwargs: dict[str, Any] = {"dest": f"method_{setting.name}", "help": text,
                                  "metavar": metavar}  # fmt: skip
        if setting.kind is tuple:
            kwargs.update(type=int, nargs="+")
        elif setting.kind is bool:
            kwargs.update(type=_bool)
        else:
            kwargs.update(type=setting.kind)
        if isinstance(setting.domain, OneOf):
            kwargs.update(choices=setting.domain.choices, metavar=None)
        group.add_argument(f"--{flag}", **kwargs)


_METAVARS = {int: "N", float: "X", bool: "BOOL", tuple: "N"}


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default) or "none"
    return str(default) if default != "" else "none"


def method_config(method: Method, args: argparse.Namespace, section: Mapping[str, Any]) -> Any:
    """A method's config: the ``--config`` YAML's section for it, then the flags given; a
    flag of another method is an error naming it."""
    values = dict(section)
    own = {s.name for s in method.settings}
    for key, value in vars(args).items():
        if not key.startswith("method_") or value is None:
            continue
        name = key.removeprefix("method_")
        if name not in own:
            raise ValueError(f"--{name.replace('_', '-')} is not an option of {method.name}")
        values[name] = value
    return method.make_config(values, f"{args.config or 'flags'}: {method.name}")
