"""Reading image files: the size from the header (cheap), the pixels (checked)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from yolo.data.records import Problems

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or corrupt: ``"<path>: <reason>"``."""

    def __init__(self, path: Path, kind: str, detail: str = "") -> None:
        self.path, self.kind, self.detail = path, kind, detail
        self.reason = kind + (f" ({detail})" if detail else "")
        super().__init__(f"{path}: {self.reason}")


# PIL's own decompression-bomb bound (~89 Mpx): a few-kB PNG can claim 10⁹ pixels and take
# gigabytes to decode; such a file is refused from its header, before any decoding
MAX_IMAGE_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def _checked_size(path: Path, image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageReadError(path, "image too large", f"{width}x{height} = {width * height:,} "
                                   f"pixels; at most {MAX_IMAGE_PIXELS:,}")  # fmt: skip
    return width, height


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(path) as image:
                return _checked_size(path, image)
    except FileNotFoundError:
        raise ImageReadError(path, "missing image") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, "image too large", str(exc)) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(path, "unreadable image", type(exc).__name__) from None


def size_or_report(path: Path, problems: Problems) -> tuple[int, int] | None:
    """(width, height), or None after reporting the image as unreadable."""
    try:
        return image_size(path)
    except ImageReadError as exc:
        problems.report(path, exc.kind, exc.detail)
        return None


def read_image(path: Path) -> np.ndarray:
    """Decode to an (H, W, 3) uint8 RGB array; a corrupt or truncated file is an error.

    PIL (not cv2) decodes: cv2 returns grey rows for a truncated JPEG with only a warning.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(path) as image:
                _checked_size(path, image)
                return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise ImageReadError(path, "missing image") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, "image too large", str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(path, "corrupt or unreadable image", str(exc)) from None


def write_image(path: Path, image: np.ndarray, *, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB array; JPEG quality applies to .jpg files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=quality)
