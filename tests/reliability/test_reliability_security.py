"""Security: API keys, paths from requests, checkpoints that smuggle code.

The images run as a non-root user: that is checked where the Dockerfiles are tested,
``tests/docker/test_dockerfiles.py::test_images_run_as_a_non_root_user``.
"""

from __future__ import annotations

import ast
import inspect
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from reliability_testing import StartService, assert_clean_log
from service_process import REPO, ServiceProcess

from indexer.checkpoint import FORMAT, read_checkpoint
from indexer.cli import main as indexer_main
from indexer.errors import ModelNotFound
from service.api import deps

KEYS = ("alpha-key-0123456789abcdef", "beta-key-fedcba9876543210")


# ----------------------------------------------------------------------------- API keys
def test_api_keys_are_never_logged_nor_echoed(
    tmp_path: Path, start_service: StartService, face_photos: list[Path]
) -> None:
    """Debug logging on, every kind of request, right and wrong keys: none shows up."""
    service = start_service(
        tmp_path / "data", FACEFIND_API_KEYS=",".join(KEYS), FACEFIND_LOG_LEVEL="debug"
    )
    real = KEYS[0]
    wrong = [
        "x" * len(real),  # same length
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # a typo of the real key
        real[:10],  # a prefix
        real + "-and-more",  # longer
        "short",
        "",
    ]
    photo = face_photos[0]
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=service.url, timeout=120) as http:
        for key in [*KEYS, *wrong]:
            headers = {"X-API-Key": key}
            answers += [
                http.get("/info", headers=headers),
                http.get("/gallery", params={"label": "x"}, headers=headers),
                http.post("/query", files={"image": (photo.name, photo.read_bytes())},
                          headers=headers),
                http.post("/gallery", files=[("images", (photo.name, photo.read_bytes()))],
                          headers=headers),
                http.get("/metrics", headers=headers),
            ]  # fmt: skip
        answers.append(http.get("/info", headers={"X-API-Key": b"\xff\xfe-latin-1"}))
        answers.append(http.get("/info"))
    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [401] * (len(statuses) - 10), statuses
    assert service.stop() in (0, -15)
    log = service.text()
    assert '"GET /info HTTP/1.1" 401' in log, "access logging must be on for this to mean anything"
    for secret in [*KEYS, *wrong[:4], "latin-1"]:
        assert secret not in log, f"{secret!r} appears in the service's log"
        for answer in answers:
            assert secret not in answer.text, (secret, answer.request.url, answer.text[:200])
    assert_clean_log(log)


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key is compared with hmac.compare_digest, with no early exit: the
    work does not depend on whether, or which, key matched."""
    keys = ["first-key-aaaaaaaa", "second-key-bbbbbbb", "third-key-ccccccccc"]
    calls: list[tuple[bytes, bytes]] = []
    real_compare = deps.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", counting)
    for given, valid in [(keys[0], True), (keys[2], True), ("nope", False), ("", False)]:
        calls.clear()
        assert deps.key_is_valid(given, keys) is valid
        assert [b for _, b in calls] == [k.encode() for k in keys]
    tree = ast.parse(inspect.getsource(deps.key_is_valid))
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert compares == [], "keys must not be compared with == or in"
    assert any(isinstance(n, ast.Attribute) and n.attr == "compare_digest" for n in ast.walk(tree))
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For)]
    assert loops, "every key must be compared"
    exits = [n for loop in loops for n in ast.walk(loop) if isinstance(n, ast.Return | ast.Break)]
    assert exits == [], "no early exit: the time must not tell which key matched"


# ----------------------------------------------------------------------------- paths
def raw_request(port: int, method: str, target: bytes, key: str = "") -> tuple[int, bytes]:
    """One request sent byte for byte: no client library normalises ``..`` or ``%2e``."""
    body = b'{"label": "x"}' if method == "PATCH" else b""
    head = (
        f"{method} ".encode()
        + target
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + (f"X-API-Key: {key}\r\n".encode() if key else b"")
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


TRAVERSALS = [
    b"../../etc/passwd",
    b"..%2F..%2F..%2Fetc%2Fpasswd",
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"%252e%252e%252fetc%252fpasswd",
    b"..%5C..%5Cwindows%5Cwin.ini",
    b"%2Fetc%2Fpasswd",
    b"/etc/passwd",
    b"....//....//etc/passwd",
    b"%00",
    b"..%2F" * 40 + b"etc%2Fpasswd",
]
STATIC = [
    b"/static/../../service/settings.py",
    b"/static/..%2F..%2Fservice%2Fsettings.py",
    b"/static/%2e%2e/%2e%2e/etc/passwd",
    b"/static//etc/passwd",
    b"/static/..%5C..%5Cservice%5Csettings.py",
    b"/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
]
SECRETS_ON_DISK = (b"root:", b"ServiceSettings", b"[build-system]")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    model_path: Path,
    yunet_model: Path,
    face_photos: list[Path],
) -> Iterator[tuple[ServiceProcess, str]]:
    """A service whose data directory is alone in its parent, so that strays would show."""
    root = tmp_path_factory.mktemp("paths")
    env = {"FACEFIND_API_KEYS": KEYS[0]}
    log = tmp_path_factory.mktemp("paths-log") / "service.log"
    with ServiceProcess(root / "data", model_path, yunet_model, log, env) as service:
        with httpx.Client(
            base_url=service.url, timeout=120, headers={"X-API-Key": KEYS[0]}
        ) as http:
            files = [("images", (face_photos[0].name, face_photos[0].read_bytes()))]
            face_id = http.post("/gallery", files=files).json()["added"][0]["id"]
        yield service, face_id


def test_no_request_path_reaches_files_outside_the_data_directory(
    served: tuple[ServiceProcess, str],
) -> None:
    service, face_id = served
    ok, crop = raw_request(service.port, "GET", f"/gallery/{face_id}/image".encode(), KEYS[0])
    assert ok == 200 and crop[:2] == b"\xff\xd8"  # the route works for a real id
    tried = 0
    for evil in TRAVERSALS:
        for method, suffix in (("GET", b""), ("GET", b"/image"), ("DELETE", b""), ("PATCH", b"")):
            status, body = raw_request(service.port, method, b"/gallery/" + evil + suffix, KEYS[0])
            tried += 1
            assert status in (400, 404, 405, 422), (method, evil, status, body[:200])
            assert not any(s in body for s in SECRETS_ON_DISK), (evil, body[:200])
    for evil in STATIC:
        status, body = raw_request(service.port, "GET", evil)
        tried += 1
        assert status in (400, 404), (evil, status, body[:200])
        assert not any(s in body for s in SECRETS_ON_DISK), (evil, body[:200])
    assert tried == 4 * len(TRAVERSALS) + len(STATIC)
    with httpx.Client(base_url=service.url, headers={"X-API-Key": KEYS[0]}) as http:
        assert http.get(f"/gallery/{face_id}").status_code == 200  # nothing was deleted
    assert_clean_log(service.text())


def test_uploaded_names_and_labels_never_become_paths(
    served: tuple[ServiceProcess, str], tmp_path: Path, face_photos: list[Path]
) -> None:
    service, _ = served
    marker = f"escape-{uuid.uuid4().hex}"
    names = [f"../../{marker}-a.jpg", f"/tmp/{marker}-b.jpg", f"..\\..\\{marker}-c.jpg",
             f"C:\\{marker}-d.jpg", f"%2e%2e%2f{marker}-e.jpg"]  # fmt: skip
    with httpx.Client(base_url=service.url, timeout=120, headers={"X-API-Key": KEYS[0]}) as http:
        for name, photo in zip(names, face_photos[1:], strict=False):
            answer = http.post(
                "/gallery",
                files=[("images", (name, photo.read_bytes(), "image/jpeg"))],
                data={"label": f"../../{marker}-label", "metadata": f'{{"path": "/tmp/{marker}"}}'},
            )
            assert answer.status_code == 200, answer.text
            source = answer.json()["added"][0]["source"]
            assert "/" not in source and "\\" not in source and source.endswith(".jpg"), source
            query = http.post("/query", files={"image": (name, photo.read_bytes())})
            assert query.json()["file"] == source
    data = service.data_dir
    places = [tmp_path, REPO, REPO.parent, Path("/tmp"), data.parent, data]
    escaped = [p for place in places for p in place.glob(f"**/{marker}*" if place in (tmp_path, data) else f"{marker}*")]  # fmt: skip
    assert escaped == []
    allowed = {"gallery.sqlite3", "gallery.sqlite3-wal", "gallery.sqlite3-shm", "index.faiss", "index.json"}  # fmt: skip
    assert {p.name for p in data.iterdir()} <= allowed
    assert [p.name for p in data.parent.iterdir()] == ["data"]
    assert_clean_log(service.text())


# ----------------------------------------------------------------------------- checkpoints
class Smuggler:
    """Unpickling this calls ``open(marker, "w")``: code that runs as the file loads."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "CODE-RAN"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "arch": "resnet18",
                "state_dict": {}, "payload": Smuggler(marker)}, path)  # fmt: skip
    assert not marker.exists()
    return path, marker


def test_a_checkpoint_that_smuggles_code_is_refused_everywhere(
    evil_checkpoint: tuple[Path, Path],
    tmp_path: Path,
    yunet_model: Path,
    face_photos: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, marker = evil_checkpoint
    with pytest.raises(ModelNotFound, match=r"refused, since loading it could run code") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value) and "weights_only" not in str(err.value)
    assert not marker.exists()

    folder = face_photos[0].parent
    code = indexer_main(["build", str(folder), "--index", str(tmp_path / "index"),
                         "--model", str(path), "--detector", "yunet",
                         "--detector-model", str(yunet_model)])  # fmt: skip
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 2 and len(err_lines) == 1 and "could run code" in err_lines[0]
    assert not marker.exists()

    log = tmp_path / "service.log"
    service = ServiceProcess(tmp_path / "data", path, yunet_model, log).start(wait=False)
    try:
        assert service.wait_exit() == 2
    finally:
        service.kill()
    text = service.text()
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1].startswith("facefind: error:")
    assert "could run code" in text.strip().splitlines()[-1]
    assert not marker.exists()


def torch_load_calls() -> list[tuple[str, int, bool]]:
    """Every ``torch.load(...)`` in the shipped packages: (file, line, weights_only=True?)."""
    found = []
    for package in ("indexer", "service", "training"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"
                ):
                    safe = any(
                        k.arg == "weights_only"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is True
                        for k in node.keywords
                    )
                    found.append((str(path.relative_to(REPO)), node.lineno, safe))
    return found


def test_every_torch_load_is_weights_only() -> None:
    calls = torch_load_calls()
    assert calls, "no torch.load found: the scan is broken"
    assert [c for c in calls if not c[2]] == []
