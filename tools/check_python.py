"""Refuse, in one line, a venv whose Python is not the one the lock was resolved for.

The lock pins exact versions, and some of them exist only for some Pythons (numpy 2.4 needs
3.11+): installing it into another interpreter would fail deep inside pip or, worse, half
succeed. Usage: python tools/check_python.py requirements.lock (run by ``make venv``)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def main(lock: Path) -> int:
    match = re.search(r"^# python: (\d+\.\d+)$", lock.read_text(), re.M)
    if match is None:
        print(
            f"{lock}: no '# python: X.Y' header line; regenerate it with `make lock`",
            file=sys.stderr,
        )
        return 2
    have = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if have != match.group(1):
        print(
            f"{lock}: resolved for Python {match.group(1)}, but {sys.executable} is Python "
            f"{have}; use PYTHON=python{match.group(1)} (and `make clean`), or `make lock`",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
