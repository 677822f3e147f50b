"""End to end in a real headless Chromium.

* a paper session serves the dashboard; the page fills in live as orders fill, and the
  numbers on the page (Indian digit grouping) equal the server's view;
* the page runs under its Content-Security-Policy without a single violation;
* a symbol, side or message carrying markup renders as text: no element, no handler;
* without the token the browser gets the login page, and a DNS-rebound host name is refused;
* on a phone-sized screen the orders panel is on screen, with no sideways scrolling.

Needs Debian's chromium and chromium-driver (``.ci/run`` installs them and sets
HFTCORE_REQUIRE_BROWSER=1 so a missing browser fails instead of skipping).
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import hftcore
from hftcore.console import inr

from browser import chrome, need_browser

NS = 1_000_000_000
T0 = 1_764_128_700 + 1800                       # 2026-11-26 09:45:00 IST


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _driver(width=1280, height=1100, extra=(), phone=False):
    return chrome(width, height, extra, phone)


def _csp_violations(driver):
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


@pytest.fixture
def paper_session(tmp_path):
    need_browser()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1]),
           "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "hftcore", "paper", "-q", "--dashboard", "--port", str(port),
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
    assert "?token=" in url
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _api(url, route):
    base, token = url.split("?token=")
    req = urllib.request.Request(base.rstrip("/") + route,
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_dashboard_shows_live_orders_and_the_view_numbers(paper_session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        driver.get(paper_session)                      # ?token= -> cookie -> /
        assert driver.current_url.endswith("/") and "token" not in driver.current_url
        wait = WebDriverWait(driver, 60, poll_frequency=0.1)
        # before the first fill the page already shows capital, cash and equity
        wait.until(lambda d: d.find_element(By.ID, "equity").text not in ("", "–"))
        # orders appear on the page while the session runs, without a reload
        counts = set()

        def more_rows(d):
            counts.add(len(d.find_elements(By.CSS_SELECTOR, "#orders tbody tr")))
            return len(counts - {0}) >= 2
        wait.until(more_rows)
        # then the session finishes (square-off) and the numbers stop moving
        wait.until(lambda d: d.find_element(By.ID, "status").text == "finished")
        time.sleep(1.0)                                  # one more stream tick
        view = _api(paper_session, "/api/view")
        p = view["portfolio"]
        assert p["initial_capital"] == 1_000_000.0
        for k in ("initial_capital", "cash", "equity", "realized_pnl", "unrealized_pnl",
                  "charges", "exposure", "net_pnl"):
            assert driver.find_element(By.ID, k).text == inr(p[k]), k
        assert driver.find_element(By.ID, "initial_capital").text == "10,00,000.00"
        assert driver.find_element(By.ID, "position_count").text == str(p["position_count"])
        rows = driver.find_elements(By.CSS_SELECTOR, "#orders tbody tr")
        assert len(rows) == len(view["orders"]) > 0
        newest = view["orders"][0]
        cells = [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")]
        assert cells[1] == newest["symbol"] and cells[2] == newest["side"]
        assert cells[6] == newest["status"] and cells[0].count(":") == 2   # HH:MM:SS IST
        assert driver.find_element(By.ID, "market_time").text.count(":") == 2
        # the whole session's equity is on the chart (canvas drawn, axes labelled)
        hist = _api(paper_session, "/api/equity")
        assert hist["count"] > 10
        drawn = driver.execute_script(
            "const c = document.getElementById('chart');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;")
        assert drawn > 2000
        assert _csp_violations(driver) == []
        out = Path(os.environ.get("HFTCORE_SCREENSHOT_DIR", "reports"))
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / "dashboard.png"))
        assert (out / "dashboard.png").stat().st_size > 10_000
    finally:
        driver.quit()


PAYLOAD = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\''
SIDE = "BUY\" onmouseover=\"window.__pwned=3\" x='"


@pytest.fixture
def hostile_server():
    need_browser()
    from hftcore.services import DashboardFeed, EventBus
    from hftcore.web import DashboardServer
    bus = EventBus()
    feed = DashboardFeed(bus)
    feed.update_portfolio({"initial_capital": 1e6, "cash": 1e6, "equity": 1e6})
    bus.publish("order.placed", {"order_id": PAYLOAD, "symbol": PAYLOAD, "side": SIDE,
                                 "quantity": 1, "order_type": PAYLOAD, "status": PAYLOAD,
                                 "ts": T0 * NS})
    bus.publish("order.rejected", {"order_id": "R1", "symbol": PAYLOAD, "side": SIDE,
                                   "quantity": 1, "rule": PAYLOAD, "message": PAYLOAD,
                                   "ts": T0 * NS})
    bus.publish("signals.raw", {"symbol": PAYLOAD, "strategy": PAYLOAD, "timeframe": PAYLOAD,
                                "action": SIDE, "confidence": 0.5, "reason": PAYLOAD})
    bus.publish("portfolio.updated", {"positions": [{"symbol": PAYLOAD, "quantity": 1}],
                                      "cash": 1e6, "equity": 1e6, "position_count": 1,
                                      "ts": T0 * NS})
    bus.publish("risk.halted", {"reason": PAYLOAD, "rule": PAYLOAD, "ts": T0 * NS})
    bus.publish("feed.stale", {"symbol": PAYLOAD, "seconds": 3, "reason": PAYLOAD})
    feed.update_system_state("status", PAYLOAD)
    feed.update_system_state("mode", PAYLOAD)
    server = DashboardServer(feed, port=0, interval=0.1).start()
    yield server
    server.stop()


def test_markup_in_symbols_sides_and_messages_renders_as_text(hostile_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        driver.get(hostile_server.url)
        wait = WebDriverWait(driver, 30, poll_frequency=0.1)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#orders tbody tr")) == 2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#signals tbody tr"))
        time.sleep(0.5)
        assert driver.find_elements(By.TAG_NAME, "img") == []
        assert driver.execute_script("return window.__pwned") is None
        handlers = driver.execute_script(
            "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
            ".filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name));")
        assert handlers == []
        scripts = driver.execute_script(
            "return [...document.scripts].map(s => s.getAttribute('src'));")
        assert scripts == ["/static/app.js"]
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#orders tbody td")]
        assert PAYLOAD.strip() in cells and SIDE.strip() in cells
        # the side is not a known one, so it gets no class either
        side_td = driver.find_elements(By.CSS_SELECTOR, "#orders tbody tr td:nth-child(3)")[0]
        assert side_td.get_attribute("class") == ""
        assert PAYLOAD.strip() in driver.find_element(By.ID, "banners").text
        assert driver.find_element(By.CSS_SELECTOR, "#positions tbody td").text == PAYLOAD.strip()
        assert _csp_violations(driver) == []
    finally:
        driver.quit()


def test_browser_without_token_or_on_a_rebound_host_name(hostile_server):
    from selenium.webdriver.common.by import By

    port = hostile_server.port
    # evil.test resolves to 127.0.0.1, as a DNS-rebinding attacker would arrange
    driver = _driver(extra=("--host-resolver-rules=MAP evil.test 127.0.0.1",))
    try:
        driver.get(hostile_server.base_url)
        assert driver.find_elements(By.NAME, "token") and not driver.find_elements(By.ID, "orders")
        driver.get(hostile_server.base_url + "api/view")
        assert "unauthorized" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(f"http://evil.test:{port}/?token={hostile_server.token}")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "forbidden" in body and "unexpected Host" in body
        driver.get(f"http://evil.test:{port}/api/view?token={hostile_server.token}")
        assert "1000000" not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()


def test_orders_panel_is_on_a_phone_screen(hostile_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver(390, 844, phone=True)
    try:
        driver.get(hostile_server.url)
        WebDriverWait(driver, 30, poll_frequency=0.1).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#orders tbody tr"))
        width = driver.execute_script("return window.innerWidth")
        assert width <= 420
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        panel = driver.execute_script(
            "const r = document.getElementById('orders').closest('section')"
            ".getBoundingClientRect(); return [r.left, r.right, r.top];")
        assert panel[0] >= 0 and panel[1] <= width
        # it comes right after the portfolio figures, not below the chart
        kpi_bottom = driver.execute_script(
            "return document.getElementById('kpis').getBoundingClientRect().bottom")
        chart_top = driver.execute_script(
            "return document.getElementById('chart').getBoundingClientRect().top")
        assert kpi_bottom <= panel[2] < chart_top
    finally:
        driver.quit()


def test_before_the_first_fill_the_page_shows_capital_cash_and_equity():
    need_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from hftcore.feeds import SyntheticFeed
    from hftcore.session import PaperSession
    from hftcore.web import serve_session
    session = PaperSession(SyntheticFeed(["SBIN"], seed=3), capital=250_000.0)
    server = serve_session(session, port=0, token_file=False)
    driver = _driver()
    try:
        driver.get(server.url)
        WebDriverWait(driver, 30, poll_frequency=0.1).until(
            lambda d: d.find_element(By.ID, "conn").text == "live")
        for k in ("initial_capital", "cash", "equity"):
            assert driver.find_element(By.ID, k).text == "2,50,000.00", k
        assert driver.find_element(By.ID, "net_pnl").text == "0.00"
        assert driver.find_elements(By.CSS_SELECTOR, "#orders tbody tr") == []
    finally:
        driver.quit()
        server.stop()
