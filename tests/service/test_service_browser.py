"""The web page in headless Chromium: enrol photos, query, see boxes and result thumbnails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from service_testing import LiveServer, SettingsFactory, upload

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)"
    ),
]


@pytest.fixture
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        yield context.new_page()
        context.close()
        browser.close()


def screenshot(page: Page, name: str) -> None:
    """Kept for a person to look at when FACEFIND_SCREENSHOTS names a directory."""
    target = os.environ.get("FACEFIND_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)


def test_query_shows_faces_and_result_thumbnails(
    page: Page, settings_factory: SettingsFactory, faces: dict[str, list[Path]], group_photo: Path
) -> None:
    with LiveServer(settings_factory()) as server:
        gallery = [p for person in ("ben_afflek", "madonna") for p in faces[person][:3]]
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for person in ("ben_afflek", "madonna"):
                files = [upload(p) for p in faces[person][:3]]
                http.post("/gallery", files=files, data={"label": person}).raise_for_status()
        page.goto(server.url)
        page.wait_for_function("document.querySelector('#info').textContent.includes('6 faces')")

        page.set_input_files("#query-file", str(gallery[1]))
        page.wait_for_selector("#results .match img[src^='blob:']")
        page.wait_for_function(
            "[...document.querySelectorAll('#results .match img')].every(i => i.naturalWidth > 0)"
        )
        cards = page.locator("#results .match")
        assert cards.count() == 6
        assert cards.first.locator("strong").inner_text() == "ben_afflek"
        assert float(cards.first.locator(".similarity").inner_text()) > 0.99
        assert page.locator(".face-box.selected").count() == 1
        screenshot(page, "query.png")

        page.set_input_files("#query-file", str(group_photo))
        page.wait_for_function("document.querySelectorAll('.face-box').length >= 2")
        page.locator(".face-box").nth(1).click()
        page.wait_for_selector("#results-title:has-text('Face 2')")
        assert page.locator(".face-box.selected").count() == 1
        screenshot(page, "group.png")


def test_enrol_browse_relabel_and_delete(
    page: Page, settings_factory: SettingsFactory, faces: dict[str, list[Path]]
) -> None:
    with LiveServer(settings_factory()) as server:
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(server.url)
        page.click("button.tab[data-view='gallery']")
        page.set_input_files("#enrol-files", [str(p) for p in faces["elton_john"][:3]])
        page.fill("#enrol-label", "elton")
        page.click("#enrol-submit")
        page.wait_for_selector("#enrol-report:has-text('Added 3 face(s)')")
        page.wait_for_function(
            "document.querySelectorAll('#entries .entry img[src^=\"blob:\"]').length === 3"
        )
        screenshot(page, "gallery.png")

        first = page.locator("#entries .entry").first
        first.locator("input").fill("Sir Elton")
        first.locator("button", has_text="Save").click()
        page.wait_for_selector("#message:has-text('Saved')")
        first.locator("button", has_text="Delete").click()
        page.wait_for_function("document.querySelectorAll('#entries .entry').length === 2")

        with httpx.Client(base_url=server.url) as http:
            listed = http.get("/gallery").json()
        assert listed["count"] == 2
        assert all(e["label"] == "elton" for e in listed["data"])
        page.fill("#browse-label", "elton")
        page.click("#delete-label")
        page.wait_for_selector("#message:has-text('Deleted 2 face(s)')")
        assert page.locator("#entries .entry").count() == 0
