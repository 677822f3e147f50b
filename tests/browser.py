"""Headless Chromium for the end-to-end tests: Debian's chromium + chromedriver through
selenium.  Skipped where missing, unless HFTCORE_REQUIRE_BROWSER=1 (as in .ci/run)."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REQUIRED = os.environ.get("HFTCORE_REQUIRE_BROWSER") == "1"


def need_browser():
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        if REQUIRED:
            pytest.fail(f"browser test required but missing: {missing}")
        pytest.skip(f"no browser here: {missing}")


def chrome(width=1280, height=1100, extra=(), phone=False):
    """A headless Chromium with browser console logging, on an empty profile; the flags
    keep it off the network (this machine's network is closed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--window-size={width},{height}",
                 f"--user-data-dir={tempfile.mkdtemp()}", *extra):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if phone:                            # a phone screen in CSS pixels, touch, DPR 3
        opts.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 3.0, "touch": True}})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)
