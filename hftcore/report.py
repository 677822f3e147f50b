"""Backtest results: trades, metrics and a report folder (CSV, PNG, HTML).

Round-trip trades are rebuilt from the fills with the same compiled ledger the
portfolio uses (one ``Ledger`` per symbol), so a trade's PnL is exactly the
realized PnL the portfolio booked for it.  Files are written with fixed
formatting, so the same data and seed give byte-identical CSVs.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from hftcore_ext.ledger import Ledger

from .feeds import IST, NS

TRADING_SECONDS_PER_YEAR = 252 * (6 * 3600 + 15 * 60)


def _ts(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS, IST).strftime("%Y-%m-%d %H:%M:%S")


def _open_trade(symbol: str, signed_qty: int, ts: int, price_paise: int) -> dict:
    return {"symbol": symbol, "side": "LONG" if signed_qty > 0 else "SHORT", "entry_ts": ts,
            "quantity": abs(signed_qty), "entry_value": abs(signed_qty) * price_paise,
            "entry_qty": abs(signed_qty), "exit_value": 0, "exit_qty": 0, "pnl": 0, "fees": 0}


def trades_from_fills(fills: list[dict]) -> list[dict]:
    """Round trips per symbol: a trade opens when a position leaves zero and closes
    when it returns to zero (a flip closes one trade and opens the next)."""
    books: dict[str, dict] = {}
    trades = []
    for f in fills:
        sym = f["symbol"]
        b = books.setdefault(sym, {"led": Ledger(1, 0), "open": None})
        led = b["led"]
        qty = f["quantity"] if f["side"] == "BUY" else -f["quantity"]
        before_qty = led.position(0)[0]
        before_realized, before_fees = led.realized, led.fees
        led.apply_fill(0, qty, f["price_paise"], f["fees_paise"])
        after_qty = led.position(0)[0]
        if b["open"] is None and before_qty == 0:
            b["open"] = _open_trade(sym, qty, f["ts"], f["price_paise"])
        t = b["open"]
        closing = before_qty != 0 and (before_qty > 0) != (qty > 0)
        t["pnl"] += led.realized - before_realized
        t["fees"] += led.fees - before_fees
        if closing:
            closed = min(abs(qty), abs(before_qty))
            t["exit_value"] += closed * f["price_paise"]
            t["exit_qty"] += closed
        elif before_qty != 0:
            t["entry_value"] += abs(qty) * f["price_paise"]
            t["entry_qty"] += abs(qty)
            t["quantity"] = max(t["quantity"], abs(after_qty))
        if after_qty == 0 or (before_qty != 0 and (after_qty > 0) != (before_qty > 0)):
            t["exit_ts"] = f["ts"]
            trades.append(t)
            b["open"] = None
            if after_qty != 0:               # flipped: the rest opens a new trade
                b["open"] = _open_trade(sym, after_qty, f["ts"], f["price_paise"])
    out = []
    for t in trades:
        out.append({"symbol": t["symbol"], "side": t["side"], "entry_time": _ts(t["entry_ts"]),
                    "exit_time": _ts(t["exit_ts"]), "quantity": t["quantity"],
                    "entry_price": round(t["entry_value"] / t["entry_qty"] / 100, 4),
                    "exit_price": round(t["exit_value"] / max(t["exit_qty"], 1) / 100, 4),
                    "pnl": t["pnl"] / 100, "fees": t["fees"] / 100,
                    "net_pnl": (t["pnl"] - t["fees"]) / 100})
    return out


def metrics(session) -> dict:
    """Summary numbers of a finished PaperSession."""
    totals = session.portfolio.get_totals()
    trades = trades_from_fills(session.fills)
    wins = sum(1 for t in trades if t["net_pnl"] > 0)
    curve = np.array([e for _, e in session.equity_curve] or [totals["equity_paise"]],
                     dtype=np.float64) / 100
    ts = np.array([t for t, _ in session.equity_curve] or [0], dtype=np.int64)
    peak = np.maximum.accumulate(curve)
    dd = curve - peak
    max_dd = float(dd.min()) if len(dd) else 0.0
    max_dd_pct = float((dd / peak).min() * 100) if len(dd) and peak.min() > 0 else 0.0
    sharpe = 0.0
    if len(curve) > 2:
        with np.errstate(divide="ignore", invalid="ignore"):     # equity 0: no returns
            rets = np.diff(curve) / curve[:-1]
        step = float(np.median(np.diff(ts))) / NS if len(ts) > 1 else 60.0
        if np.isfinite(rets).all() and rets.std() > 0 and step > 0:
            sharpe = float(rets.mean() / rets.std() * math.sqrt(TRADING_SECONDS_PER_YEAR / step))
    r = session.report
    return {"trades": len(trades), "win_rate": (wins / len(trades) * 100) if trades else 0.0,
            "fills": totals["fills"], "realized_pnl": totals["realized_pnl"],
            "unrealized_pnl": totals["unrealized_pnl"], "charges": totals["fees"],
            "net_pnl": totals["net_pnl"], "final_equity": totals["equity"],
            "max_drawdown": max_dd, "max_drawdown_pct": max_dd_pct, "sharpe": sharpe,
            "max_exposure": float(session.max_exposure),
            "ticks": r.ticks, "decisions": r.decisions, "orders": r.orders,
            "rejected": r.rejected, "latency_p50_us": r.latency_us(50),
            "latency_p99_us": r.latency_us(99), "balanced": totals["balanced"]}


def format_summary(m: dict) -> str:
    rows = [("trades", f"{m['trades']}"), ("win rate", f"{m['win_rate']:.1f} %"),
            ("fills", f"{m['fills']}"), ("realized PnL", f"{m['realized_pnl']:,.2f}"),
            ("unrealized PnL", f"{m['unrealized_pnl']:,.2f}"), ("charges", f"{m['charges']:,.2f}"),
            ("net PnL", f"{m['net_pnl']:,.2f}"), ("final equity", f"{m['final_equity']:,.2f}"),
            ("max drawdown", f"{m['max_drawdown']:,.2f} ({m['max_drawdown_pct']:.2f} %)"),
            ("Sharpe (annualised)", f"{m['sharpe']:.2f}"),
            ("max exposure", f"{m['max_exposure']:,.2f}"),
            ("orders / rejected", f"{m['orders']} / {m['rejected']}"),
            ("tick-to-intent latency", f"p50 {m['latency_p50_us']:.1f} us, "
                                       f"p99 {m['latency_p99_us']:.1f} us")]
    return "\n".join(f"{k:>24}  {v}" for k, v in rows)


TRADE_FIELDS = ["symbol", "side", "entry_time", "exit_time", "quantity", "entry_price",
                "exit_price", "pnl", "fees", "net_pnl"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell a spreadsheet will not run: a text cell starting with ``= + - @``,
    tab or CR gets a leading ``'`` (OWASP's advice against formula injection).
    Numbers are left alone (-5 stays a number); floats get four decimals."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([csv_cell(k) for k in fields])
        for r in rows:
            w.writerow([csv_cell(r[k]) for k in fields])


def equity_png(session) -> bytes:
    """Equity curve over drawdown, as PNG bytes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curve = np.array([e for _, e in session.equity_curve], dtype=np.float64) / 100
    when = [dt.datetime.fromtimestamp(t / NS, IST).replace(tzinfo=None)
            for t, _ in session.equity_curve]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1.3]})
    if len(curve):
        peak = np.maximum.accumulate(curve)
        ax1.plot(when, curve, color="#1f6feb", linewidth=1.2)
        ax2.fill_between(when, curve - peak, 0, color="#d1242f", alpha=0.45, linewidth=0)
    ax1.set_title("Equity (INR)")
    ax1.grid(alpha=0.3)
    ax2.set_title("Drawdown (INR)")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def write_report(session, out_dir, title: str = "hftcore backtest") -> dict:
    """Write trades.csv, fills.csv, equity.png, summary.json and report.html; returns
    the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = metrics(session)
    trades = trades_from_fills(session.fills)
    _write_csv(out / "trades.csv", trades, TRADE_FIELDS)
    fill_rows = [{"time": _ts(f["ts"]), "order_id": f["order_id"], "fill_id": f["fill_id"],
                  "symbol": f["symbol"], "side": f["side"], "quantity": f["quantity"],
                  "price": f["price_paise"] / 100, "fees": f["fees_paise"] / 100}
                 for f in session.fills]
    _write_csv(out / "fills.csv", fill_rows,
               ["time", "order_id", "fill_id", "symbol", "side", "quantity", "price", "fees"])
    png = equity_png(session)
    (out / "equity.png").write_bytes(png)
    (out / "summary.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(t[k]))}</td>" for k in TRADE_FIELDS)
                   + "</tr>" for t in trades[-500:])
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                      for k, v in (line.strip().split("  ", 1) for line in
                                   format_summary(m).splitlines()))
    (out / "report.html").write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:right}}
th{{text-align:left}}h1{{font-size:20px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{summary}</table>
<img alt="equity and drawdown" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Trades ({len(trades)}{", last 500 shown" if len(trades) > 500 else ""})</h2>
<table><tr>{"".join(f"<th>{k}</th>" for k in TRADE_FIELDS)}</tr>{rows}</table>
</body></html>
""", encoding="utf-8")
    return m
