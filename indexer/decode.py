"""Turn the bytes users upload into RGB pixels, safely.

Pillow sniffs the format from the content (never the file name), so JPEG, PNG, WebP, BMP,
TIFF, PGM/PPM and GIF all work. The pixel count is checked from the header before any pixel
is decoded, which is what stops decompression bombs.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import ImageTooLarge, UnreadableImage

DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".gif"}
)
"""The file names a folder walk takes for images (the content decides, not the name)."""

# Our own limit is checked before decoding; Pillow's global guard is kept as a second net.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS * 2


def decode_image(
    data: bytes, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode bytes to an HxWx3 uint8 RGB array, EXIF orientation applied."""
    if not data:
        raise UnreadableImage(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"{name}: {width}x{height} pixels is more than the limit of {max_pixels:,}"
                )
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            return _to_rgb(ImageOps.exif_transpose(img))
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own text quotes Pillow's limit: say it with facefind's.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)):,} pixels" if found else "more pixels than allowed"
        raise ImageTooLarge(f"{name}: {count} is more than the limit of {max_pixels:,}") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage(f"{name}: not an image in a format facefind can read") from exc
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        raise UnreadableImage(f"{name}: the image is damaged or truncated ({exc})") from exc


def read_image_bytes(path: Path | str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def read_image(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    return decode_image(read_image_bytes(path), name=str(path), max_pixels=max_pixels)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Grey, 16-bit, palette, alpha and CMYK images all become 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        elif arr.size and arr.max() > 255:
            arr = arr * (255.0 / arr.max())
        grey = np.clip(arr, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
