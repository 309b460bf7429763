"""一公开 in a real browser: Debian's headless Chromium opens the public page, searches by a
credit code, follows a task to its draw record, downloads the CSV and compares it with the
database; a screenshot is kept under the test's temp directory.

`.ci/run` installs `chromium` and `chromium-driver` when missing; nothing is downloaded here
(selenium is pointed at the system's driver, so Selenium Manager never runs).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from sqlalchemy import select

from storage.models import PublicEntry
from tests.conftest import Harness
from tests.factories import CITY, COUNTY
from tests.results_support import TASK, Visit
from tests.support.public import PREFIX, publish_sample, serve
from tests.support.waiting import wait_until

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture
async def published(h: Harness) -> list[Visit]:
    return await publish_sample(h)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    try:
        yield driver
    finally:
        driver.quit()


async def test_art37_the_public_page_in_a_browser(
    h: Harness, published: list[Visit], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    async with h.db.transaction() as s:
        entries = list(await s.scalars(select(PublicEntry).order_by(PublicEntry.id)))
    wanted = entries[0]
    client = await serve(h)
    base = str(client.make_url(""))
    try:
        await asyncio.to_thread(browser.get, f"{base}{PREFIX}/{CITY}/2026")
        assert "双随机抽查结果公示" in browser.title
        box = browser.find_element(By.ID, "q")
        box.send_keys(wanted.uscc)
        await asyncio.to_thread(box.submit)
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 1 and wanted.target_name in rows[0].text
        await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "search.png"))
        await asyncio.to_thread(rows[0].find_element(By.LINK_TEXT, TASK).click)
        assert "抽取记录" in browser.title and "承诺值" in browser.page_source
        # From the checking county's page (the address 公示 gives) the link opens it too.
        await asyncio.to_thread(browser.get, f"{base}{PREFIX}/{COUNTY}/2026")
        await asyncio.to_thread(browser.find_element(By.LINK_TEXT, TASK).click)
        assert "抽取记录" in browser.title and TASK in browser.page_source
        await asyncio.to_thread(browser.get, f"{base}{PREFIX}/{CITY}/2026")
        await asyncio.to_thread(browser.find_element(By.LINK_TEXT, "CSV").click)
        download = tmp_path / f"{CITY}-2026.csv"
        await wait_until(download.exists, "the CSV download")
        await wait_until(lambda: not list(tmp_path.glob("*.crdownload")), "the download to end")
    finally:
        await client.close()
    rows_csv = list(csv.DictReader(io.StringIO(download.read_text(encoding="utf-8-sig"))))
    assert sorted((r["统一社会信用代码"], r["检查结果"]) for r in rows_csv) == sorted(
        (e.uscc, e.phrase) for e in entries
    )
    assert (tmp_path / "search.png").stat().st_size > 0
