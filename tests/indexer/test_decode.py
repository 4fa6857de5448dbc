from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.decode import decode_image, read_image
from indexer.errors import ImageTooLarge, UnreadableImage


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def face(shared_data: Path) -> Image.Image:
    return Image.open(next((shared_data / "lfw" / "Aaron_Eckhart").glob("*.jpg"))).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "PPM", "GIF"])
def test_common_formats_decode_to_rgb(face: Image.Image, fmt: str) -> None:
    pixels = decode_image(_encode(face, fmt), name=f"x.{fmt.lower()}")
    assert pixels.shape == (face.height, face.width, 3)
    assert pixels.dtype == np.uint8


def test_greyscale_pgm_from_orl(shared_data: Path) -> None:
    pixels = read_image(next((shared_data / "orl" / "s1").glob("*.pgm")))
    assert pixels.shape == (112, 92, 3)
    assert (pixels[..., 0] == pixels[..., 1]).all()


def test_exif_orientation_is_applied(face: Image.Image) -> None:
    wide = face.resize((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    pixels = decode_image(_encode(wide, "JPEG", exif=exif.tobytes()))
    assert pixels.shape[:2] == (200, 100)


def test_rgba_cmyk_and_16_bit_are_converted(face: Image.Image) -> None:
    rgba = face.copy()
    rgba.putalpha(128)
    assert decode_image(_encode(rgba, "PNG")).shape[2] == 3
    assert decode_image(_encode(face.convert("CMYK"), "JPEG")).shape[2] == 3
    grey16 = Image.fromarray(np.asarray(face.convert("L"), dtype=np.uint16) * 257)
    pixels = decode_image(_encode(grey16, "PNG"))
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3
    assert abs(int(pixels.mean()) - int(np.asarray(face.convert("L")).mean())) <= 2


def test_pixel_limit_rejects_before_decoding() -> None:
    big = _encode(Image.new("L", (5000, 5000)), "PNG")
    with pytest.raises(ImageTooLarge, match="bomb.png"):
        decode_image(big, name="bomb.png", max_pixels=10_000_000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text",
        b"<html><body>hi</body></html>",
        b"\xff\xd8\xff\xe0" + b"\0" * 50,
    ],
)
def test_unreadable_bytes_name_the_file(data: bytes) -> None:
    with pytest.raises(UnreadableImage, match="upload.jpg"):
        decode_image(data, name="upload.jpg")


def test_truncated_jpeg_is_unreadable(face: Image.Image) -> None:
    data = _encode(face, "JPEG")
    with pytest.raises(UnreadableImage):
        decode_image(data[: len(data) // 2], name="cut.jpg")


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")
