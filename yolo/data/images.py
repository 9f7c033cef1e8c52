"""Reading image files: the size from the header (cheap), the pixels (checked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from yolo.data.records import Problems

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or corrupt: ``"<path>: <reason>"``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise ImageReadError(path, "missing image") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(path, f"unreadable image ({type(exc).__name__})") from None


def size_or_report(path: Path, problems: Problems) -> tuple[int, int] | None:
    """(width, height), or None after reporting the image as unreadable."""
    try:
        return image_size(path)
    except ImageReadError as exc:
        problems.report(path, "unreadable image", exc.reason)
        return None


def read_image(path: Path) -> np.ndarray:
    """Decode to an (H, W, 3) uint8 RGB array; a corrupt or truncated file is an error.

    PIL (not cv2) decodes: cv2 returns grey rows for a truncated JPEG with only a warning.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise ImageReadError(path, "missing image") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(path, f"corrupt or unreadable image ({exc})") from None


def write_image(path: Path, image: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB array; JPEG quality applies to .jpg files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=quality)
