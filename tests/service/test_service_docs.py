"""/docs and /redoc with no network: Swagger UI and ReDoc come from the package (issue 14)."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from service_process import REPO
from service_testing import CHROMIUM, CHROMIUM_ARGS, LiveServer, SettingsFactory, screenshot

from service.main import STATIC

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

if TYPE_CHECKING:
    from playwright.sync_api import Page

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture
def offline_page() -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request off loopback is aborted, and the list of those requests."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", only_loopback)
        yield context.new_page(), blocked
        context.close()
        browser.close()


@pytest.mark.browser
def test_docs_show_every_operation_offline(
    offline_page: tuple[Page, list[str]], settings_factory: SettingsFactory
) -> None:
    page, blocked = offline_page
    with LiveServer(settings_factory()) as server:
        spec = TestClient(server.app).get("/openapi.json").json()
        operations = [op for item in spec["paths"].values() for op in item.values()]
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".opblock-summary", timeout=60_000)
        assert page.locator(".opblock").count() == len(operations)
        summaries = page.locator(".opblock-summary-description").all_inner_texts()
        assert "Search with one photo" in summaries and "Add photos" in summaries
        screenshot(page, "docs.png")

        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("h2:has-text('Search with one photo')", timeout=60_000)
        headings = page.locator("[data-section-id^='operation/'] h2").all_inner_texts()
        assert len(headings) == len(operations) and "Add photos" in headings
        screenshot(page, "redoc.png")
    assert blocked == []


def test_docs_pages_reference_only_packaged_assets(client: TestClient) -> None:
    for path, assets in (
        ("/docs", ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css")),
        ("/redoc", ("redoc/redoc.standalone.js",)),
    ):
        html = client.get(path).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "https://" not in html
        for asset in assets:
            url = f"/static/vendor/{asset}"
            assert url in html
            assert client.get(url).status_code == 200
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (STATIC / "vendor" / licence).is_file()
    assert "oauth2" in client.get("/docs/oauth2-redirect").text
    assert client.get("/favicon.ico").headers["content-type"] == "image/x-icon"


def test_package_data_ships_every_static_file() -> None:
    """A wheel must carry the vendored assets too, or /docs breaks only once installed."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["service"]
    package = STATIC.parent
    files = [p.relative_to(package).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert any(f.startswith("static/vendor/swagger-ui/") for f in files)
    # setuptools' globs: "*" stays within one folder, as fnmatch's does not; compare by depth
    unshipped = [
        f
        for f in files
        if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)
    ]
    assert unshipped == []
