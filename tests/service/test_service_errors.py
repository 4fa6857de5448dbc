"""Bad input of every kind: a JSON ``detail`` sentence, the right status, a server still up."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_testing import LiveServer, SettingsFactory, make_settings, upload

from service.main import create_app

UPLOAD_LIMIT = 200_000
REQUEST_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, yunet_model: Path
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("errors") / "data",
        model_path,
        yunet_model,
        max_upload_bytes=UPLOAD_LIMIT,
        max_request_bytes=REQUEST_LIMIT,
        max_files=3,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def noise_png(side: int) -> bytes:
    """Random pixels do not compress: a PNG of about 3 * side**2 bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 50_000) -> bytes:
    """A tiny file whose header claims side x side pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (side + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10
    for word in words:
        assert word in detail, detail


def test_not_an_image_is_415_whatever_its_name(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    fake = {"image": ("photo.jpg", b"%PDF-1.4 not a photo", "image/jpeg")}
    assert_error(client.post("/query", files=fake), 415, "photo.jpg", "not an image")
    cut = {"image": ("cut.jpg", faces["madonna"][0].read_bytes()[:400], "image/jpeg")}
    assert_error(client.post("/query", files=cut), 415, "cut.jpg")
    empty = {"image": ("empty.jpg", b"", "image/jpeg")}
    assert_error(client.post("/query", files=empty), 415, "empty")


def test_content_is_sniffed_not_the_name_or_type(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    disguised = {"image": ("notes.txt", faces["madonna"][0].read_bytes(), "text/plain")}
    assert client.post("/query", files=disguised).status_code == 200
    grey_pgm = next(Path(faces["madonna"][0]).parents[2].glob("orl/s1/*.pgm"))
    as_pgm = {"image": ("face.bin", grey_pgm.read_bytes(), "application/octet-stream")}
    assert client.post("/query", files=as_pgm).json()["width"] == 92


def test_uploads_over_the_limit_are_413(client: TestClient) -> None:
    big = noise_png(300)
    assert len(big) > UPLOAD_LIMIT
    assert_error(
        client.post("/query", files={"image": ("big.png", big, "image/png")}),
        413,
        "big.png",
        "limit",
    )
    added = client.post("/gallery", files=[("images", ("big.png", big, "image/png"))]).json()
    assert added["rejected"][0]["status"] == 413
    huge = [("images", (f"{i}.png", big[:190_000], "image/png")) for i in range(6)]
    assert_error(client.post("/query/batch", files=huge), 413, "larger")


def test_a_decompression_bomb_is_413_with_facefinds_own_limit(client: TestClient) -> None:
    """Pillow's guard fires first on a huge header; its text must not reach the caller."""
    bomb = bomb_png()
    assert len(bomb) < 1_000
    response = client.post("/query", files={"image": ("bomb.png", bomb, "image/png")})
    assert_error(response, 413, "bomb.png", "2,500,000,000 pixels", "limit of 40,000,000")
    assert "DOS" not in response.json()["detail"]
    just_over = bomb_png(6_400)  # 41 M pixels: over facefind's limit, under Pillow's
    response = client.post("/query", files={"image": ("over.png", just_over, "image/png")})
    assert_error(response, 413, "over.png", "limit of 40,000,000")
    files = [("images", ("bomb.png", bomb, "image/png"))]
    rejected = client.post("/gallery", files=files).json()["rejected"]
    assert rejected[0]["status"] == 413 and "limit of 40,000,000" in rejected[0]["detail"]


def test_bad_parameters_are_422(client: TestClient, faces: dict[str, list[Path]]) -> None:
    image = {"image": faces["madonna"][0].read_bytes()}
    for params in ({"k": 0}, {"k": 101}, {"k": "ten"}, {"faces": "some"}, {"min_similarity": 2}):
        assert_error(client.post("/query", files=image, params=params), 422, "Invalid request")
    assert_error(client.post("/query", params={"k": 3}), 422, "image")
    assert_error(client.post("/query"), 422, "image")
    bad_meta = {"metadata": "[1, 2]"}
    assert_error(
        client.post("/gallery", files=[upload(faces["madonna"][0])], data=bad_meta), 422, "metadata"
    )
    assert_error(
        client.post("/gallery", files=[upload(faces["madonna"][0])], data={"metadata": "{"}), 422
    )
    assert_error(client.patch("/gallery/x", json={"colour": "red"}), 422, "colour")
    assert_error(
        client.patch(
            "/gallery/x", content=b"not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    assert_error(client.get("/gallery", params={"limit": 0}), 422, "limit")
    assert_error(client.delete("/gallery"), 422, "label")
    four = [upload(faces["madonna"][i]) for i in range(4)]
    too_many = client.post("/gallery", files=four)
    assert_error(too_many, 422, "At most 3")
    assert client.post("/query/batch", files=four).json() == too_many.json()


def test_unknown_entries_routes_and_methods(client: TestClient) -> None:
    """One sentence for an unknown id, whichever route (and layer) finds it missing."""
    unknown = [
        client.get("/gallery/nobody"),
        client.get("/gallery/nobody/image"),
        client.patch("/gallery/nobody", json={"label": "x"}),
        client.delete("/gallery/nobody"),
    ]
    for response in unknown:
        assert_error(response, 404)
        assert response.json() == {"detail": "There is no gallery entry with id 'nobody'."}
    assert_error(client.get("/no/such/page"), 404)
    assert_error(client.put("/gallery"), 405)


def test_a_real_server_refuses_big_bodies_while_reading_and_stays_up(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(max_upload_bytes=UPLOAD_LIMIT, max_request_bytes=REQUEST_LIMIT)
    big = noise_png(700)
    assert len(big) > REQUEST_LIMIT
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        declared = http.post("/query", files={"image": ("big.png", big, "image/png")})
        assert_error(declared, 413)

        def stream() -> Iterator[bytes]:
            yield b"--x\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n"
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]
            yield b"\r\n--x--\r\n"

        chunked = http.post(
            "/query", content=stream(), headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert_error(chunked, 413)
        assert_error(http.post("/query", files={"image": ("x.gif", b"GIF89a", "image/gif")}), 415)
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").status_code == 200
