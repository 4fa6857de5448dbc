"""``/people`` on a real uvicorn over a real gallery: group, list, name, merge, move out.

The test model has random weights, so the grouping is driven to a known outcome: at
threshold 1 no two photos link, and with ``min_faces=1`` every face is a person of its own;
the user actions are then checked face by face.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_testing import LiveServer, SettingsFactory, upload


@pytest.fixture
def http(settings_factory: SettingsFactory, faces: dict[str, list[Path]]) -> Iterator[httpx.Client]:
    with (
        LiveServer(settings_factory()) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        photos = faces["ben_afflek"][:3] + faces["madonna"][:2]
        client.post("/gallery", files=[upload(p) for p in photos]).raise_for_status()
        yield client


def each_alone(http: httpx.Client) -> dict:
    done = http.post("/people/cluster", params={"threshold": 1, "min_faces": 1})
    assert done.status_code == 200, done.text
    return done.json()


def label_of(http: httpx.Client, face: str) -> str | None:
    return http.get(f"/gallery/{face}").json()["label"]


def test_group_list_and_read_persons(http: httpx.Client) -> None:
    assert http.get("/people").json() == {
        "data": [], "count": 0, "unassigned": 5, "offset": 0, "limit": 50
    }  # fmt: skip
    summary = each_alone(http)
    assert (summary["persons"], summary["assigned"], summary["unassigned"]) == (5, 5, 0)
    assert summary["threshold"] == 1 and summary["full"] is False
    listed = http.get("/people", params={"limit": 3}).json()
    assert (listed["count"], listed["unassigned"], len(listed["data"])) == (5, 0, 3)
    person = listed["data"][0]
    assert person["face_count"] == 1 and person["label"] is None
    image = http.get(person["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    one = http.get(f"/people/{person['id']}").json()
    assert [f["id"] for f in one["faces"]] == [person["cover_id"]]
    again = each_alone(http)  # incremental: nothing new to place
    assert (again["persons"], again["joined"], again["new_persons"]) == (5, 0, 0)


def test_name_merge_and_move_out(http: httpx.Client) -> None:
    each_alone(http)
    first, second, third = http.get("/people").json()["data"][:3]
    named = http.patch(f"/people/{first['id']}", json={"label": "Ben"})
    assert named.status_code == 200 and named.json()["label"] == "Ben"
    assert label_of(http, first["cover_id"]) == "Ben"

    merged = http.post(f"/people/{first['id']}/merge", json={"other": second["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["face_count"] == 2
    assert label_of(http, second["cover_id"]) == "Ben"  # the name goes to the merged faces
    assert http.get(f"/people/{second['id']}").status_code == 404
    assert http.get("/people").json()["count"] == 4

    moved = http.delete(f"/people/{first['id']}/faces/{second['cover_id']}")
    assert moved.status_code == 200, moved.text
    assert moved.json()["person"]["face_count"] == 1
    assert label_of(http, second["cover_id"]) is None
    assert http.get("/people").json()["unassigned"] == 1
    each_alone(http)  # a face a user moved out is not grouped again
    assert http.get("/people").json()["unassigned"] == 1

    last = http.delete(f"/people/{third['id']}/faces/{third['cover_id']}")
    assert last.json()["person"] is None  # its only face left: the person is gone
    assert http.patch(f"/people/{first['id']}", json={"label": None}).json()["label"] is None
    assert label_of(http, first["cover_id"]) is None


def test_unknown_ids_and_bad_requests_are_4xx_sentences(http: httpx.Client) -> None:
    each_alone(http)
    person = http.get("/people").json()["data"][0]["id"]
    cases = [
        (http.get("/people/999"), 404, "There is no person with id 999."),
        (http.patch("/people/999", json={"label": "x"}), 404, "There is no person with id 999."),
        (http.post(f"/people/{person}/merge", json={"other": 999}), 404, "no person with id 999"),
        (http.post(f"/people/{person}/merge", json={"other": person}), 400, "into itself"),
        (http.delete(f"/people/{person}/faces/nope"), 404, "is not one of person"),
        (http.delete("/people/999/faces/nope"), 404, "no person with id 999"),
    ]
    for response, status, sentence in cases:
        assert response.status_code == status, response.text
        assert sentence in response.json()["detail"]
    assert http.patch(f"/people/{person}", json={"name": "x"}).status_code == 422
    assert http.post("/people/cluster", params={"min_faces": 0}).status_code == 422


def test_full_run_groups_with_the_default_threshold(http: httpx.Client) -> None:
    """The test model carries no calibrated threshold: the documented default is used."""
    from indexer.people import DEFAULT_THRESHOLD

    done = http.post("/people/cluster", params={"full": True, "min_faces": 1}).json()
    assert done["threshold"] == DEFAULT_THRESHOLD and done["full"] is True
    assert done["assigned"] + done["unassigned"] == 5 == done["faces"]
    listed = http.get("/people").json()
    assert sum(p["face_count"] for p in listed["data"]) == done["assigned"]
