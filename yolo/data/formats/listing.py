"""Split entries that name images: list files (one path a line) or folders of images."""

from __future__ import annotations

from pathlib import Path

from yolo.data.images import IMAGE_SUFFIXES
from yolo.data.records import DataError, Problems, inside_root
from yolo.data.spec import DatasetSpec


def list_images(spec: DatasetSpec, split: str, problems: Problems) -> list[Path]:
    """Image paths of a split; paths in list files are relative to ``root`` unless absolute."""
    images: list[Path] = []
    for entry in spec.entries(split):
        target = inside_root(spec.root, spec.root / entry, f"{spec.source}: {split}")
        if target.is_dir():
            images += sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif target.is_file():
            for number, line in enumerate(target.read_text().splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                path = Path(line) if Path(line).is_absolute() else spec.root / line
                inside_root(spec.root, path, f"{target}:{number}")
                if not path.is_file():
                    problems.report(f"{target}:{number}", "missing image", str(path))
                    continue
                images.append(path)
        else:
            raise DataError(
                f"{spec.source}: {split}: '{entry}' is neither a list file nor a "
                f"folder under {spec.root}"
            )
    return images
