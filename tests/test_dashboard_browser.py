"""End to end in a real headless Chromium: a paper session serves the dashboard; the page
shows an order, and the numbers on the page equal the JSON snapshot.

Needs Debian's chromium and chromium-driver (``.ci/run`` installs them and sets
HFTCORE_REQUIRE_BROWSER=1 so a missing browser fails instead of skipping).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import hftcore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REQUIRED = os.environ.get("HFTCORE_REQUIRE_BROWSER") == "1"


def _need_browser():
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        if REQUIRED:
            pytest.fail(f"browser test required but missing: {missing}")
        pytest.skip(f"no browser here: {missing}")


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def paper_session(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "hftcore", "paper", "--dashboard", "--port", str(port),
         "--speed", "1500", "--duration", "90", "--symbols", "RELIANCE", "TCS", "SBIN",
         "--checkpoint-dir", str(tmp_path / "ckpt")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    url = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if line.startswith("dashboard: "):
            url = line.split(" ", 1)[1].strip()
        elif not line and proc.poll() is not None:
            break
    assert url, "paper session did not start its dashboard"
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _snapshot(url):
    with urllib.request.urlopen(url + "api/snapshot", timeout=10) as resp:
        return json.load(resp)


def test_dashboard_shows_live_orders_and_the_snapshot_numbers(paper_session):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1100",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(paper_session)
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)
        # an order appears on the page, live
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#orders tbody tr"))
        # then the session finishes (square-off) and the numbers stop moving
        wait.until(lambda d: d.find_element(By.ID, "status").text == "finished")
        time.sleep(1.2)                               # one more stream tick
        snap = _snapshot(paper_session)
        page = {k: driver.find_element(By.ID, k).text
                for k in ("cash", "equity", "realized_pnl", "unrealized_pnl", "exposure",
                          "position_count")}
        p = snap["portfolio"]
        for k in ("cash", "equity", "realized_pnl", "unrealized_pnl", "exposure"):
            assert page[k] == f"{p[k]:.2f}", (k, page[k], p[k])
        assert page["position_count"] == str(p["position_count"])
        rows = driver.find_elements(By.CSS_SELECTOR, "#orders tbody tr")
        assert len(rows) == min(15, len(snap["orders"])) > 0
        newest = snap["orders"][-1]
        assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == newest["symbol"]
        out = Path(os.environ.get("HFTCORE_SCREENSHOT_DIR", "reports"))
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / "dashboard.png"))
        assert (out / "dashboard.png").stat().st_size > 10_000
    finally:
        driver.quit()
