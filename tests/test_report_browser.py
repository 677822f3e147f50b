"""The backtest's report.html in a real headless Chromium: it loads offline (Bokeh's
JavaScript inline), logs no console errors, and draws the chart (Bokeh canvases with
pixels on them, one panel per traded symbol plus equity and drawdown).

Skipped without chromium/chromedriver unless HFTCORE_REQUIRE_BROWSER=1 (as in CI).
"""
import os
from pathlib import Path


from hftcore.cli import main

from browser import chrome, need_browser

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"
# Bokeh 3 draws inside shadow roots: walk them to find the canvases and the plot titles.
FIND = """
const found = {canvases: [], titles: []};
const walk = (root) => {
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'CANVAS') found.canvases.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
};
walk(document);
return found.canvases.map(c => {
  const r = c.getBoundingClientRect();
  let ink = 0;
  try {
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) ink++;
  } catch (e) { ink = -1; }
  return [Math.round(r.width), Math.round(r.height), ink];
});
"""


def test_report_html_opens_without_console_errors_and_shows_the_chart(tmp_path, capsys):
    need_browser()
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "report"
    assert main(["backtest", "--data", str(DATA), "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "cdn.bokeh.org" not in page and "<script src=" not in page   # works offline
    driver = chrome(1280, 1400)
    try:
        driver.get((out / "report.html").as_uri())
        wait = WebDriverWait(driver, 60, poll_frequency=0.25)
        # two candle panels (both symbols traded), equity, drawdown: each a drawn canvas
        wait.until(lambda d: sum(1 for w, h, ink in d.execute_script(FIND)
                                 if w > 200 and h > 100 and ink > 0) >= 4)
        shapes = driver.execute_script(FIND)
        assert all(ink >= 0 for _, _, ink in shapes)
        logs = driver.get_log("browser")
        severe = [e for e in logs if e.get("level") == "SEVERE"]
        assert not severe, severe
        assert "Bokeh" in driver.execute_script("return Object.keys(window).join(' ')")
        text = driver.execute_script("return document.body.innerText")
        for needle in ("Sharpe Ratio", "Buy & Hold Return [%]", "Per symbol", "RELIANCE",
                       "INFY", "Charges by component", "Provenance", "sha256"):
            assert needle in text, needle
        shots = Path(os.environ.get("HFTCORE_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "report.png"))

        # the sweep's heatmap page, too
        sweep = tmp_path / "sweep"
        assert main(["optimize", "--data", str(DATA), "--symbols", "INFY", "--strategy",
                     "ema_trend", "--grid", "min_gap_atr=0,0.3", "--grid", "full_gap_atr=1,2",
                     "--workers", "1", "--out", str(sweep)]) == 0
        driver.get((sweep / "heatmap.html").as_uri())
        wait.until(lambda d: any(w > 200 and h > 200 and ink > 0
                                 for w, h, ink in d.execute_script(FIND)))
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()
