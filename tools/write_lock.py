"""Write requirements.lock from a resolved venv: every installed distribution at its exact
version (pip, setuptools and wheel included, so builds use them too), with a header naming
the interpreter and platform it was resolved on. torch's local build label (``+cpu``) is
dropped: ``torch==X`` is satisfied by whichever build ``TORCH_SPEC`` installed first.

Usage: python tools/write_lock.py VENV_PYTHON OUT  (run by ``make lock``)
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

PROJECT = "yolo-compress-tune"


def main(python: str, out: Path) -> None:
    listing = json.loads(
        subprocess.check_output(
            [python, "-m", "pip", "list", "--format", "json", "--exclude-editable"], text=True
        )
    )
    info = json.loads(
        subprocess.check_output(
            [
                python,
                "-c",
                (
                    "import json, platform, sys; v = sys.version_info;"
                    " print(json.dumps({'python': f'{v[0]}.{v[1]}',"
                    " 'platform': f'{sys.platform}-{platform.machine()}'}))"
                ),
            ],
            text=True,
        )
    )
    lines = []
    for item in sorted(listing, key=lambda d: d["name"].lower()):
        if item["name"].lower() == PROJECT:
            continue
        version = item["version"]
        if item["name"].lower() == "torch":
            version = re.sub(r"\+.*$", "", version)
        lines.append(f"{item['name']}=={version}")
    header = [
        "# The whole tested environment, every package at its exact version.",
        "# `make` installs it with `pip install --no-deps -r requirements.lock` (torch first,",
        "# from TORCH_SPEC); refresh on purpose with `make lock`, then `make test`.",
        f"# python: {info['python']}",
        f"# platform: {info['platform']}",
        f"# resolved: {datetime.date.today().isoformat()}",
    ]
    out.write_text("\n".join(header + lines) + "\n")
    print(f"wrote {out}: {len(lines)} packages (python {info['python']}, {info['platform']})")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
