"""The gallery endpoints through the TestClient, over a real store on disk."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from service_testing import SettingsFactory, upload

from indexer.store import GalleryStore
from service.main import create_app


def test_enrol_query_relabel_delete_round_trip(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    ben, madonna = faces["ben_afflek"][:3], faces["madonna"][:2]
    meta = json.dumps({"team": "actors"})
    added = client.post(
        "/gallery", files=[upload(p) for p in ben], data={"label": "ben", "metadata": meta}
    )
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["rejected"] == [] and len(body["added"]) == 3
    entry = body["added"][0]
    assert entry["label"] == "ben" and entry["metadata"] == {"team": "actors"}
    assert entry["face_found"] is True and entry["duplicate"] is False
    assert entry["source"] == ben[0].name and len(entry["box"]) == 4
    client.post("/gallery", files=[upload(p) for p in madonna], data={"label": "madonna"})

    listed = client.get("/gallery", params={"label": "ben"}).json()
    assert listed["count"] == 3 and {e["id"] for e in listed["data"]} == {
        e["id"] for e in body["added"]
    }
    assert client.get("/gallery").json()["count"] == 5
    page = client.get("/gallery", params={"offset": 4, "limit": 2}).json()
    assert page["count"] == 5 and len(page["data"]) == 1

    assert client.get(f"/gallery/{entry['id']}").json()["source"] == ben[0].name
    crop = client.get(entry["image_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(crop.content)).size == (64, 64)

    found = client.post("/query", files=[upload(ben[0], "image")], params={"k": 5}).json()
    best = found["faces"][0]["matches"][0]
    assert best["id"] == entry["id"] and best["similarity"] > 0.99 and best["label"] == "ben"

    patched = client.patch(f"/gallery/{entry['id']}", json={"label": "Ben Affleck"})
    assert patched.json()["label"] == "Ben Affleck"
    assert patched.json()["metadata"] == {"team": "actors"}, "fields not sent are kept"
    patched = client.patch(f"/gallery/{entry['id']}", json={"metadata": {"x": 1}, "label": None})
    assert patched.json()["label"] is None and patched.json()["metadata"] == {"x": 1}

    assert client.delete(f"/gallery/{entry['id']}").json() == {"deleted": 1}
    assert client.get(f"/gallery/{entry['id']}").status_code == 404
    assert client.get(entry["image_url"]).status_code == 404
    assert client.delete(f"/gallery/{entry['id']}").status_code == 404
    found = client.post("/query", files=[upload(ben[0], "image")], params={"k": 10}).json()
    assert entry["id"] not in {m["id"] for m in found["faces"][0]["matches"]}

    assert client.delete("/gallery", params={"label": "ben"}).json() == {"deleted": 2}
    assert client.get("/gallery").json()["count"] == 2
    assert client.get("/info").json()["gallery_size"] == 2


def test_bad_files_are_reported_per_file_and_do_not_fail_the_others(
    client: TestClient, faces: dict[str, list[Path]], blank_png: bytes
) -> None:
    good = faces["jerry_seinfeld"][0]
    files = [
        upload(good),
        ("images", ("notes.jpg", b"these are not pixels", "image/jpeg")),
        ("images", ("sky.png", blank_png, "image/png")),
        ("images", ("cut.jpg", good.read_bytes()[:300], "image/jpeg")),
    ]
    body = client.post("/gallery", files=files, data={"label": "jerry"}).json()
    assert [e["source"] for e in body["added"]] == [good.name]
    rejected = {r["file"]: r for r in body["rejected"]}
    assert rejected["notes.jpg"]["status"] == 415
    assert rejected["sky.png"]["status"] == 422 and "no face" in rejected["sky.png"]["detail"]
    assert rejected["cut.jpg"]["status"] == 415
    assert client.get("/gallery").json()["count"] == 1


def test_nothing_added_is_an_error_that_keeps_the_reasons(
    client: TestClient, faces: dict[str, list[Path]], blank_png: bytes
) -> None:
    """A 200 would read as success to a script; the status is the files' own when shared."""
    junk = ("images", ("notes.jpg", b"these are not pixels", "image/jpeg"))
    sky = ("images", ("sky.png", blank_png, "image/png"))
    alone = client.post("/gallery", files=[junk])
    assert alone.status_code == 415, alone.text
    assert alone.json()["rejected"][0]["file"] == "notes.jpg"
    assert alone.json()["detail"].startswith("No photo was added: notes.jpg: not an image")
    mixed = client.post("/gallery", files=[junk, sky], data={"label": "nobody"})
    assert mixed.status_code == 422, mixed.text
    body = mixed.json()
    assert [(r["file"], r["status"]) for r in body["rejected"]] == [
        ("notes.jpg", 415),
        ("sky.png", 422),
    ]
    assert "notes.jpg" in body["detail"] and "sky.png: no face found" in body["detail"]
    assert client.get("/gallery").json()["count"] == 0
    again = [upload(faces["madonna"][0])]
    assert client.post("/gallery", files=again).status_code == 200
    assert client.post("/gallery", files=again).json()["added"][0]["duplicate"] is True
    spec = client.get("/openapi.json").json()["paths"]["/gallery"]["post"]
    assert "rejected" in str(spec["responses"]["422"]) and "415" in spec["responses"]


def test_whole_image_can_be_indexed_when_no_face_is_found(
    client: TestClient, blank_png: bytes
) -> None:
    files = [("images", ("sky.png", blank_png, "image/png"))]
    body = client.post("/gallery", files=files, params={"if_no_face": "whole_image"}).json()
    (entry,) = body["added"]
    assert entry["face_found"] is False and entry["box"] == [0, 0, 160, 120]


def test_the_same_image_is_not_stored_twice(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    photo = faces["mindy_kaling"][0]
    first = client.post("/gallery", files=[upload(photo)], data={"label": "mindy"}).json()
    again = client.post(
        "/gallery",
        files=[upload(photo, name="copy.jpg"), upload(photo, name="copy2.jpg")],
        data={"label": "someone else"},
    ).json()
    assert [e["id"] for e in again["added"]] == [first["added"][0]["id"]] * 2
    assert all(e["duplicate"] and e["label"] == "mindy" for e in again["added"])
    twice = client.post("/gallery", files=[upload(p) for p in [faces["madonna"][0]] * 2]).json()
    assert [e["duplicate"] for e in twice["added"]] == [False, True]
    assert twice["added"][0]["id"] == twice["added"][1]["id"]
    assert client.get("/gallery").json()["count"] == 2


def test_caller_chosen_id_and_its_conflicts(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    photos = faces["elton_john"]
    made = client.post("/gallery", files=[upload(photos[0])], data={"id": "elton-1"})
    assert made.json()["added"][0]["id"] == "elton-1"
    assert client.get("/gallery/elton-1").status_code == 200
    clash = client.post("/gallery", files=[upload(photos[1])], data={"id": "elton-1"})
    assert clash.status_code == 409 and "elton-1" in clash.json()["detail"]
    two = client.post("/gallery", files=[upload(p) for p in photos[1:3]], data={"id": "x"})
    assert two.status_code == 422 and "single image" in two.json()["detail"]
    bad = client.post("/gallery", files=[upload(photos[1])], data={"id": "../etc/passwd"})
    assert bad.status_code == 422
    assert client.get("/gallery").json()["count"] == 1


def test_every_face_of_a_group_photo(client: TestClient, group_photo: Path) -> None:
    body = client.post("/gallery", files=[upload(group_photo)], params={"faces": "all"}).json()
    assert len(body["added"]) >= 2
    assert len({tuple(e["box"]) for e in body["added"]}) == len(body["added"])
    assert all(e["source"] == group_photo.name for e in body["added"])


def test_a_gallery_built_offline_is_served_and_grows_in_place(
    settings_factory: SettingsFactory,
    faces: dict[str, list[Path]],
    model_path: Path,
    yunet_model: Path,
    tmp_path: Path,
) -> None:
    """``python -m indexer build --index DIR`` writes the very directory the service serves."""
    photos = tmp_path / "photos"
    for person in ("madonna", "elton_john"):
        (photos / person).mkdir(parents=True)
        for path in faces[person][:3]:
            shutil.copy(path, photos / person / path.name)
    settings = settings_factory()
    build = [sys.executable, "-m", "indexer", "build", str(photos), "--index", str(settings.data_dir),
             "--model", str(model_path), "--detector", "yunet", "--detector-model", str(yunet_model),
             "--workers", "1"]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True, timeout=300)

    with TestClient(create_app(settings)) as client:
        assert client.get("/info").json()["gallery_size"] == 6
        listed = client.get("/gallery", params={"label": "madonna"}).json()
        assert listed["count"] == 3
        query = faces["madonna"][1]
        best = client.post("/query", files=[upload(query, "image")]).json()["faces"][0]["matches"][
            0
        ]
        assert best["label"] == "madonna" and Path(best["source"]).name == query.name
        assert client.get(best["image_url"]).headers["content-type"] == "image/jpeg"
        dup = client.post("/gallery", files=[upload(query)]).json()["added"][0]
        assert dup["duplicate"] and dup["id"] == best["id"]
        client.post("/gallery", files=[upload(faces["madonna"][5])], data={"label": "madonna"})

    with GalleryStore(settings.data_dir) as store:
        assert store.count() == 7 and store.count("madonna") == 4
