"""Reading a YAML file a user wrote: safe, bounded, and every problem one line with file:line.

``yaml.safe_load`` refuses code but not a "billion laughs" alias bomb (nine nested levels of
nine aliases each: a few hundred bytes that every consumer then walks as 10⁹ items), nor a
file of gigabytes. Settings files here are short, so both the expanded size and the file
size are bounded and refused with the limit named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 4 * 2**20  # settings, specs and spaces are a few kB
MAX_EXPANDED_NODES = 1_000_000  # items once every alias is expanded; a bomb has 10⁸ and more


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in ``node`` with every alias expanded (memoised: linear in the file's size)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


def _load_bounded(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            limit = f"{MAX_EXPANDED_NODES:,}"
            raise ValueError(f"its aliases expand to {size:,} items (at most {limit}); "
                             "refused as a possible alias bomb")  # fmt: skip
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path`` (``None`` for an empty file); raises ``ValueError``
    naming file, line and problem for malformed, oversized or non-UTF-8 files."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{path}: {size:,} bytes; a YAML settings file may have at most "
                         f"{MAX_YAML_BYTES:,}")  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    try:
        return _load_bounded(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"{where}: malformed YAML ({problem})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
