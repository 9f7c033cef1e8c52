"""Reading a JSON file a user handed over (COCO annotations, detections to score): every
problem one line naming the file and, where JSON can tell, the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_json(path: Path, error: type[ValueError] = ValueError) -> Any:
    """The parsed file; malformed JSON or bytes that are not UTF-8 raise ``error`` naming
    ``path`` (a byte-order mark is not content)."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: malformed json ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
