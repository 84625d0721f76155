"""The Prefect UI, in headless Chromium: a snapshot's summary and contact sheet render.
Screenshots are kept in test-output/ui/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PrefectServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "ui"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


def test_summary_and_contact_sheet_render_in_the_ui(
    prefect_server: PrefectServer, browser: Any, tmp_path: Path
) -> None:
    result = prefect_server.snapshot("demo", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    [run] = prefect_server.api(
        "POST",
        "/flow_runs/filter",
        json={"flow_runs": {"name": {"like_": "demo-"}}, "sort": "START_TIME_DESC", "limit": 1},
    ).json()
    artifacts = {
        artifact["key"]: artifact["id"]
        for artifact in prefect_server.api(
            "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
        ).json()
    }
    ui = prefect_server.api_url.removesuffix("/api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})

    page.goto(f"{ui}/artifacts/artifact/{artifacts['demo-summary']}")
    page.get_by_text("images_per_second").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "summary.png"), full_page=True)
    cells = page.locator("td").all_inner_texts()
    assert "14" in cells and "19" in cells  # downloaded, selected

    page.goto(f"{ui}/artifacts/artifact/{artifacts['demo-contact-sheet']}")
    sheet = page.locator("img[src^='data:image/jpeg']").first
    sheet.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => [...document.images].some("
        "i => i.src.startsWith('data:image/jpeg') && i.naturalWidth > 0)",
        timeout=30_000,
    )
    page.screenshot(path=str(SCREENSHOTS / "contact-sheet.png"), full_page=True)
    width = sheet.evaluate("image => image.naturalWidth")
    assert width == 8 * 120  # eight thumbnails a row: the image really decoded
