"""What every bench script records beside its figures: the machine, the date, the command."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

# the CPU features that decide how fast INT8 and fp32 kernels run (ORT picks its kernels by
# them: VNNI is what makes INT8 convolutions pay; AVX-512 blocks channels by 16, AVX2 by 8)
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu() -> dict[str, object]:
    """The CPU's model name and which of :data:`CPU_FEATURES` it has (Linux; else empty)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = {name.strip(): value.split() for name, value in fields.items()}.get("flags", [])
    model = next((v.strip() for k, v in fields.items() if k.strip() == "model name"), None)
    return {"model": model, "features": [f for f in CPU_FEATURES if f in flags]}


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
KEY_PACKAGES = ("torch", "numpy", "ray", "optuna", "mlflow", "onnxruntime")


def environment() -> dict[str, object]:
    """The lock the figures were measured under (its sha256, and whether the running venv
    matches it) and the versions that move figures, so a figure can be traced to an install."""
    versions: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    pins = {}
    if LOCK.is_file():
        for line in LOCK.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and not line.startswith("#"):
                pins[name.strip().lower()] = version.strip()
    matches = all(
        pins.get(name) in (None, version.split("+")[0])  # torch's local tag: +cpu, +cu124
        for name, version in versions.items()
        if version
    )
    return {
        "lock_sha256": hashlib.sha256(LOCK.read_bytes()).hexdigest() if LOCK.is_file() else None,
        "venv_matches_lock": matches if pins else None,
        "versions": versions,
    }


def write_results(path: Path, command: str, body: dict[str, Any]) -> None:
    """Write ``body`` with the command, UTC date and machine as pretty JSON."""
    payload = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "environment": environment(),
        **body,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


SMOKE_DIR = Path("runs/bench_smoke")


def parse_with_smoke(parser: Any, smoke: dict[str, Any], name: str) -> Any:
    """Parse the script's flags; with ``--smoke`` every flag left at its default takes its
    tiny value from ``smoke`` and the JSON goes to ``runs/bench_smoke/NAME.json``, so a test
    can run the whole script in seconds (its figures mean nothing) and it cannot rot."""
    target = SMOKE_DIR / f"{name}.json"
    parser.add_argument(
        "--smoke", action="store_true", help=f"seconds, tiny sizes; writes {target}"
    )
    args = parser.parse_args()
    if args.smoke:
        for key, value in {"out": SMOKE_DIR / f"{name}.json", **smoke}.items():
            if hasattr(args, key) and getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    return args


def smoke_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny demo set (24 images, 64 px) and an untrained yolov3-tiny checkpoint of its
    classes, for a script's ``--smoke`` run."""
    from yolo.data.demo import DemoConfig, build_demo_set
    from yolo.data.spec import load_spec
    from yolo.io import save_checkpoint
    from yolo.zoo import create_model

    spec = folder / "data" / "data.yaml"
    if not spec.is_file():
        spec = build_demo_set(folder / "data", DemoConfig(images=24, size=64))
    checkpoint = folder / "model.pt"
    if not checkpoint.is_file():
        names = list(load_spec(spec).names)
        model = create_model("yolov3-tiny", num_classes=len(names), width=0.25)
        save_checkpoint(checkpoint, model, metadata={"names": names, "img_size": 64})
    return Path(spec), checkpoint
