"""The bad-input corpus: odd and hostile files and requests, each built in code.

``image_cases`` are files: each is sent to every upload route and to the CLI. ``request_cases``
are whole requests (parameters, form fields, bodies) with the status each must get. The
expected statuses are the documented ones (service/README.md): 413 too large, 415 not an
image, 422 invalid parameters or no face, 404 unknown entry, 409 id taken.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

UPLOAD_LIMIT = 400_000
"""The servers of these tests take files up to this size (FACEFIND_MAX_UPLOAD_BYTES)."""
REQUEST_LIMIT = 1_500_000
MAX_FILES = 4


@dataclass(frozen=True)
class ImageCase:
    """One file. ``query``: the status of ``POST /query`` with it alone; ``gallery``: the
    status it gets in ``POST /gallery`` (200 added, else listed under ``rejected``)."""

    name: str
    data: bytes
    query: int
    gallery: int
    filename: str | bytes = "upload.jpg"
    content_type: str | None = "image/jpeg"
    suffix: str = ".jpg"
    """The suffix of the file the CLI gets (the indexer picks files by suffix)."""
    sent_name: str | None = None
    """The name the service must report for the file, when it is not ``filename``."""
    cli: int | None = None
    """What ``python -m indexer`` makes of the file, when it differs from ``query``: 200
    indexed or searched, else an error line (the CLI has no upload limit)."""

    @property
    def reported_name(self) -> str:
        return self.sent_name or str(self.filename)

    @property
    def cli_status(self) -> int:
        return self.query if self.cli is None else self.cli


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[Any, ...]]] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class RequestCase:
    """A request and the status it must get; ``before`` runs first (its statuses unchecked)."""

    name: str
    call: Call
    status: int
    before: tuple[Call, ...] = field(default_factory=tuple)
    check: Callable[[Any], None] | None = None
    """Runs on the answer's JSON, for the cases whose body matters too."""


# ----------------------------------------------------------------------------- image builders
def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_claiming(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A hand-built greyscale PNG whose header claims ``width`` x ``height`` (valid CRCs)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = idat if idat is not None else zlib.compress(b"\x00" * (min(width, 4096) + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def bomb_png(side: int = 8_000) -> bytes:
    """A complete, valid PNG of side x side black pixels: tiny on disk, 64 M pixels decoded."""
    row = b"\x00" * (side + 1)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    pixels = b"".join(parts) + compressor.flush()
    return png_claiming(side, side, pixels)


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0/SOF2) is edited to claim other dimensions."""
    data = bytearray(jpeg)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise ValueError("no SOF0/SOF2 marker in this JPEG")


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen is ``width`` x ``height``, with one 1x1 frame."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + palette + frame + b"\x3b"


def exif_rotated(face: Image.Image) -> bytes:
    """An upright portrait (taller than wide) stored on its side with EXIF orientation 6.

    A viewer that honours EXIF (and facefind must) sees it upright: 150 wide, 230 high.
    """
    upright = Image.new("RGB", (face.width, face.height + 80), (128, 128, 128))
    upright.paste(face, (0, 0))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def animated_gif(face: Image.Image) -> bytes:
    frames = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face.rotate(20)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def multipage_tiff(face: Image.Image) -> bytes:
    buf = io.BytesIO()
    face.save(buf, format="TIFF", save_all=True, append_images=[face.rotate(90)])
    return buf.getvalue()


def transparent_png(face: Image.Image) -> bytes:
    rgba = face.convert("RGBA")
    alpha = Image.new("L", face.size, 0)
    alpha.paste(255, (10, 10, face.width - 10, face.height - 10))
    rgba.putalpha(alpha)
    return encode(rgba, "PNG")


def zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, data)
    return buf.getvalue()


def noise_png(side: int) -> bytes:
    """Random pixels do not compress: about 3 * side**2 bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def gradient_png() -> bytes:
    """A valid image without any face."""
    ramp = np.tile(np.linspace(60, 200, 160, dtype=np.uint8), (120, 1))
    return encode(Image.fromarray(ramp), "PNG")


def flip_bytes(data: bytes, start: int, count: int) -> bytes:
    out = bytearray(data)
    for i in range(start, min(len(out), start + count)):
        out[i] ^= 0xFF
    return bytes(out)


# ----------------------------------------------------------------------------- the corpus
def image_cases(face_path: Path, pgm_path: Path) -> list[ImageCase]:
    """At least 30 kinds of file: broken, hostile, odd but valid. ``face_path`` is a photo in
    which the detector finds a face; ``pgm_path`` a greyscale PGM with a face."""
    jpeg = face_path.read_bytes()
    face = Image.open(io.BytesIO(jpeg)).convert("RGB")
    png = encode(face, "PNG")
    grey = np.asarray(face.convert("L"), dtype=np.uint16) * 257
    sixteen = encode(Image.fromarray(grey), "PNG")
    assert Image.open(io.BytesIO(sixteen)).mode.startswith("I;16")
    big = noise_png(400)
    assert len(big) > UPLOAD_LIMIT
    zero = png_claiming(0, 0, zlib.compress(b""))
    bad_crc = bytearray(png)
    bad_crc[29:33] = b"\x00\x00\x00\x00"  # the IHDR chunk's CRC
    c = ImageCase
    # fmt: off
    return [
        # not images at all: 415
        c("empty file", b"", 415, 415),
        c("plain text", b"just some text, no pixels here\n" * 20, 415, 415, "notes.txt", "text/plain"),
        c("html page", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", 415, 415, "page.html", "text/html", ".jpg"),
        c("svg drawing", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><circle r="4"/></svg>', 415, 415, "a.svg", "image/svg+xml", ".png"),
        c("json document", b'{"image": "no"}', 415, 415, "a.json", "application/json", ".jpg"),
        c("pdf header", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF", 415, 415, "a.pdf", "application/pdf", ".jpg"),
        c("zip of a jpeg", zip_of("face.jpg", jpeg), 415, 415, "faces.zip", "application/zip", ".jpg"),
        c("elf binary", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, 415, 415, "a.out", "application/octet-stream", ".jpg"),
        # broken images: 415
        c("truncated jpeg", jpeg[: len(jpeg) // 2], 415, 415),
        c("truncated png", png[: len(png) // 2], 415, 415, "cut.png", "image/png", ".png"),
        c("jpeg magic only", b"\xff\xd8\xff", 415, 415),
        c("jpeg magic then garbage", b"\xff\xd8\xff\xe0" + b"\x13\x37" * 300, 415, 415),
        c("png with a bad crc", bytes(bad_crc), 415, 415, "crc.png", "image/png", ".png"),
        c("png of 0x0 pixels", zero, 415, 415, "zero.png", "image/png", ".png"),
        c("gif header only", b"GIF89a", 415, 415, "a.gif", "image/gif", ".gif"),
        # too many pixels: 413, never decoded
        c("decompression bomb", bomb_png(), 413, 413, "bomb.png", "image/png", ".png"),
        c("png claiming 50000x50000", png_claiming(50_000, 50_000), 413, 413, "huge.png", "image/png", ".png"),
        c("jpeg claiming 50000x50000", jpeg_claiming(jpeg, 50_000, 50_000), 413, 413),
        c("gif claiming 65535x65535", gif_claiming(65_535, 65_535), 413, 413, "huge.gif", "image/gif", ".gif"),
        c("oversize upload", big, 413, 413, "big.png", "image/png", ".png", cli=200),
        # odd but valid images with a face: 200, added
        c("animated gif", animated_gif(face), 200, 200, "anim.gif", "image/gif", ".gif"),
        c("cmyk jpeg", encode(face.convert("CMYK"), "JPEG", quality=92), 200, 200),
        c("16-bit png", sixteen, 200, 200, "deep.png", "image/png", ".png"),
        c("exif-rotated jpeg", exif_rotated(face), 200, 200),
        c("greyscale pgm", pgm_path.read_bytes(), 200, 200, "face.pgm", "image/x-portable-graymap", ".pgm"),
        c("progressive jpeg", encode(face, "JPEG", quality=90, progressive=True), 200, 200),
        c("jpeg with trailing garbage", jpeg + b"\x00garbage" * 100, 200, 200),
        c("transparent png", transparent_png(face), 200, 200, "alpha.png", "image/png", ".png"),
        c("palette png", encode(face.convert("P"), "PNG"), 200, 200, "pal.png", "image/png", ".png"),
        c("multi-page tiff", multipage_tiff(face), 200, 200, "pages.tif", "image/tiff", ".tif"),
        c("webp", encode(face, "WEBP", quality=90), 200, 200, "a.webp", "image/webp", ".webp"),
        c("bmp", encode(face, "BMP"), 200, 200, "a.bmp", "image/bmp", ".bmp"),
        c("wrong content type and name", encode(face, "JPEG", quality=88), 200, 200, "notes.txt", "text/plain", ".jpg"),
        c("no content type", encode(face, "JPEG", quality=87), 200, 200, "nocontent.jpg", None),
        c("path-separator file name", encode(face, "JPEG", quality=86), 200, 200, "../../../etc/passwd", sent_name="passwd"),
        c("windows path file name", encode(face, "JPEG", quality=85), 200, 200, "C:\\Windows\\system.ini", sent_name="system.ini"),
        c("1,000-character file name", encode(face, "JPEG", quality=84), 200, 200, "n" * 1_000, sent_name="n" * 255),
        c("non-utf-8 file name", encode(face, "JPEG", quality=83), 200, 200, b"caf\xe9-\xff.jpg", sent_name="caf\xe9-\xff.jpg"),
        # valid images without a face: searched whole (200), not added (422)
        c("1x1 pixel", encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), 200, 422, "dot.png", "image/png", ".png"),
        c("1x30000 pixels", encode(Image.new("L", (1, 30_000), 90), "PNG"), 200, 422, "line.png", "image/png", ".png"),
        c("100000x1 pixels", encode(Image.new("RGB", (100_000, 1), (9, 90, 200)), "PNG"), 200, 422, "wide.png", "image/png", ".png"),
        c("faceless gradient", gradient_png(), 200, 422, "ramp.png", "image/png", ".png"),
    ]
    # fmt: on


def multipart(parts: list[tuple[str, str | bytes | None, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand: (field, filename, content type, data).

    httpx always names a content type and encodes file names as UTF-8; this can leave the
    type out and send raw bytes as the file name, as a hostile client might.
    """
    boundary = b"facefind-reliability-boundary"
    body = b""
    for name, filename, content_type, data in parts:
        disposition = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        if filename is not None:
            raw = filename if isinstance(filename, bytes) else filename.encode()
            disposition += b'; filename="' + raw.replace(b'"', b"%22") + b'"'
        body += b"--" + boundary + b"\r\n" + disposition + b"\r\n"
        if content_type is not None:
            body += b"Content-Type: " + content_type.encode() + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def nested_json(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def unique(jpeg: bytes, tag: str) -> bytes:
    """The same picture, other bytes (a JPEG ignores what follows its end marker): the
    gallery, which recognises files by their bytes, takes it as a new photo."""
    return jpeg + b"\x00" + tag.encode()


def request_cases(face: bytes, other: bytes, dot: bytes) -> list[RequestCase]:
    """Bad parameters, fields and bodies on every route, each with its documented status.

    ``face`` and ``other`` are two JPEG photos with a face, ``dot`` a valid image without one.
    Each case that adds to the gallery sends bytes of its own, so no case sees another's entry.
    """
    count = iter(range(1_000_000))

    def fresh(field: str = "images") -> list[tuple[str, tuple[Any, ...]]]:
        return [(field, ("face.jpg", unique(face, f"request-{next(count)}"), "image/jpeg"))]

    img = [("image", ("face.jpg", face, "image/jpeg"))]
    imgs = [("images", ("face.jpg", face, "image/jpeg"))]
    two = [*imgs, ("images", ("other.jpg", other, "image/jpeg"))]
    five = [("images", (f"{i}.jpg", face, "image/jpeg")) for i in range(MAX_FILES + 1)]
    noise = noise_png(400)[: UPLOAD_LIMIT - 1]
    over = [("images", (f"{i}.png", noise, "image/png")) for i in range(MAX_FILES)]
    assert len(noise) * MAX_FILES > REQUEST_LIMIT
    body, multipart_type = multipart([("image", "face.jpg", "image/jpeg", face)])
    label_bytes, label_type = multipart(
        [
            ("images", "face.jpg", "image/jpeg", unique(face, "latin-1")),
            ("label", None, None, b"caf\xe9 \xff"),
        ]
    )
    long_name, long_type = multipart([("image", "n" * 10_000 + ".jpg", "image/jpeg", face)])
    r, q, g = RequestCase, "/query", "/gallery"

    def label_kept(expected: str) -> Callable[[Any], None]:
        def check(answer: Any) -> None:
            assert [e["label"] for e in answer["added"]] == [expected], answer

        return check

    def duplicate_of_first(answer: Any) -> None:
        assert answer["added"][0]["duplicate"] is True, answer

    def whole_image(answer: Any) -> None:
        assert [e["face_found"] for e in answer["added"]] == [False], answer

    twice = fresh()

    # fmt: off
    cases = [
        # POST /query
        *(r(f"query k={k!r}", Call("POST", q, {"k": k}, files=img), 422) for k in (0, -1, 10**9, "ten", 1.5, "")),
        r("query faces=bogus", Call("POST", q, {"faces": "bogus"}, files=img), 422),
        *(r(f"query min_similarity={v}", Call("POST", q, {"min_similarity": v}, files=img), 422) for v in ("2", "nan", "inf", "-inf")),
        r("query missing image field", Call("POST", q, data={"k": "3"}), 422),
        r("query image under another field name", Call("POST", q, files=[("file", img[0][1])]), 422),
        r("query image as a text field", Call("POST", q, data={"image": "face.jpg"}), 422),
        r("query json body", Call("POST", q, json={"image": "aGVsbG8="}), 422),
        r("query form-urlencoded body", Call("POST", q, data={"image": "x"}, headers={"content-type": "application/x-www-form-urlencoded"}), 422),
        r("query multipart without boundary", Call("POST", q, content=body, headers={"content-type": "multipart/form-data"}), 400),
        r("query multipart with a wrong boundary", Call("POST", q, content=body, headers={"content-type": "multipart/form-data; boundary=nope"}), 400),
        r("query multipart cut short", Call("POST", q, content=body[: len(body) // 2], headers={"content-type": multipart_type}), 422),
        r("query file name of 10,000 characters", Call("POST", q, content=long_name, headers={"content-type": long_type}), 400),
        r("query unknown parameter ignored", Call("POST", q, {"colour": "red"}, files=img), 200),
        r("query body without a content type", Call("POST", q, content=body), 422),
        r("query request over the limit", Call("POST", q, files=[("image", ("big.png", noise_png(800), "image/png"))]), 413),
        # POST /query/batch
        r("batch no images", Call("POST", "/query/batch", data={"k": "1"}), 422),
        r("batch too many images", Call("POST", "/query/batch", files=five), 422),
        r("batch k=10^9", Call("POST", "/query/batch", {"k": 10**9}, files=imgs), 422),
        r("batch request over the limit", Call("POST", "/query/batch", files=over), 413),
        # POST /gallery
        r("gallery no images", Call("POST", g, data={"label": "x"}), 422),
        r("gallery too many images", Call("POST", g, files=five), 422),
        r("gallery request over the limit", Call("POST", g, files=over), 413),
        r("gallery label of 10,000 characters", Call("POST", g, data={"label": "L" * 10_000}, files=imgs), 422),
        r("gallery non-utf-8 label", Call("POST", g, content=label_bytes, headers={"content-type": label_type}), 200, check=label_kept("caf\xe9 \xff")),
        r("gallery path-separator label", Call("POST", g, data={"label": "../../etc/passwd"}, files=fresh()), 200, check=label_kept("../../etc/passwd")),
        r("gallery control characters in label", Call("POST", g, data={"label": "a\tb\x00c\u202e"}, files=fresh()), 200, check=label_kept("a\tb\x00c\u202e")),
        r("gallery metadata not json", Call("POST", g, data={"metadata": "{city: Oslo"}, files=imgs), 422),
        r("gallery metadata a json list", Call("POST", g, data={"metadata": "[1, 2]"}, files=imgs), 422),
        r("gallery metadata json null", Call("POST", g, data={"metadata": "null"}, files=imgs), 422),
        r("gallery metadata nested 100,000 deep", Call("POST", g, data={"metadata": nested_json(100_000)}, files=fresh()), 422),
        r("gallery metadata nested 300 deep", Call("POST", g, data={"metadata": nested_json(300)}, files=fresh()), 422),
        r("gallery metadata nested 32 deep", Call("POST", g, data={"metadata": nested_json(32)}, files=fresh()), 200),
        r("gallery metadata with NaN", Call("POST", g, data={"metadata": '{"x": NaN}'}, files=fresh()), 422),
        r("gallery metadata of 100 KB", Call("POST", g, data={"metadata": '{"x": "' + "m" * 100_000 + '"}'}, files=fresh()), 422),
        r("gallery metadata of 1.2 MB", Call("POST", g, data={"metadata": '{"x": "' + "m" * 1_200_000 + '"}'}, files=fresh()), 400),
        r("gallery metadata of 2 MB", Call("POST", g, data={"metadata": '{"x": "' + "m" * 2_000_000 + '"}'}, files=imgs), 413),
        r("gallery id not matching the pattern", Call("POST", g, data={"id": "../../x"}, files=imgs), 422),
        r("gallery id of 200 characters", Call("POST", g, data={"id": "i" * 200}, files=imgs), 422),
        r("gallery id with two images", Call("POST", g, data={"id": "two-ids"}, files=two), 422),
        r("gallery id with faces=all", Call("POST", g, {"faces": "all"}, data={"id": "all-ids"}, files=imgs), 422),
        r("gallery duplicate id", Call("POST", g, data={"id": "dup-1"}, files=[("images", ("o.jpg", other, "image/jpeg"))]), 409, before=(Call("POST", g, data={"id": "dup-1"}, files=[("images", ("d.jpg", dot, "image/png"))], params={"if_no_face": "whole_image"}),)),
        r("gallery same bytes twice", Call("POST", g, files=twice), 200, before=(Call("POST", g, files=twice),), check=duplicate_of_first),
        r("gallery faces=bogus", Call("POST", g, {"faces": "bogus"}, files=imgs), 422),
        r("gallery if_no_face=bogus", Call("POST", g, {"if_no_face": "bogus"}, files=imgs), 422),
        r("gallery faceless image as whole image", Call("POST", g, {"if_no_face": "whole_image"}, files=[("images", ("d.png", dot, "image/png"))]), 200, check=whole_image),
        # the other routes
        r("list offset=-1", Call("GET", g, {"offset": -1}), 422),
        r("list offset=10^30", Call("GET", g, {"offset": 10**30}), 422),
        r("list offset=2^63-1", Call("GET", g, {"offset": 2**63 - 1}), 200),
        r("list limit=10^9", Call("GET", g, {"limit": 10**9}), 422),
        r("list label of 10,000 characters", Call("GET", g, {"label": "L" * 10_000}), 200),
        r("get unknown id", Call("GET", f"{g}/no-such-face"), 404),
        r("image of unknown id", Call("GET", f"{g}/no-such-face/image"), 404),
        r("patch unknown id", Call("PATCH", f"{g}/no-such-face", json={"label": "x"}), 404),
        r("patch unknown field", Call("PATCH", f"{g}/no-such-face", json={"colour": "red"}), 422),
        r("patch body not json", Call("PATCH", f"{g}/no-such-face", content=b"{label", headers={"content-type": "application/json"}), 422),
        r("patch label of 10,000 characters", Call("PATCH", f"{g}/no-such-face", json={"label": "L" * 10_000}), 422),
        r("patch metadata a list", Call("PATCH", f"{g}/no-such-face", json={"metadata": [1]}), 422),
        r("patch metadata nested 300 deep", Call("PATCH", f"{g}/no-such-face", content=b'{"metadata": ' + nested_json(300).encode() + b"}", headers={"content-type": "application/json"}), 422),
        r("patch metadata nested 100,000 deep", Call("PATCH", f"{g}/no-such-face", content=b'{"metadata": ' + nested_json(100_000).encode() + b"}", headers={"content-type": "application/json"}), 400),
        r("delete unknown id", Call("DELETE", f"{g}/no-such-face"), 404),
        r("delete by label without a label", Call("DELETE", g), 422),
        r("delete by unknown label", Call("DELETE", g, {"label": "nobody-has-this"}), 200),
        r("unknown route", Call("GET", "/no/such/route"), 404),
        r("wrong method", Call("PUT", g), 405),
    ]
    # fmt: on
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
