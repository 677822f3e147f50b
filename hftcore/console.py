"""The terminal side of the dashboard: Indian-grouped numbers, fills as they
happen (``print_fills``), and the text view of ``hftcore dashboard``
(``format_view``)."""

from __future__ import annotations

import datetime as dt
import math
import numbers
import sys

from .feeds import IST


def inr(value, decimals: int = 2) -> str:
    """``1234567.891`` -> ``"12,34,567.89"``: Indian digit grouping (the last three
    digits, then pairs); "-" for None, NaN or anything not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        return "-"
    text = f"{abs(value):.{decimals}f}"
    whole, _, frac = text.partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        pairs: list[str] = []
        while len(head) > 2:
            pairs.insert(0, head[-2:])
            head = head[:-2]
        whole = ",".join([head, *pairs, tail])
    negative = value < 0 and float(text) != 0
    return ("-" if negative else "") + whole + ("." + frac if frac else "")


def ist_time(seconds, fmt: str = "%H:%M:%S") -> str:
    """Market seconds (or ns) since the epoch as IST wall time; "-" if unknown."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        return "-"
    if seconds > 1e14:                               # ns
        seconds = seconds / 1e9
    return dt.datetime.fromtimestamp(seconds, IST).strftime(fmt)


def print_fills(bus, out=None) -> None:
    """Print each fill, rejection and halt on ``bus`` as it happens (one line each)
    to ``out`` (default: stdout at the time of the event)."""

    def write(line: str) -> None:
        stream = out if out is not None else sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):                # closed pipe: the session goes on
            pass

    def on_fill(event) -> None:
        p = event["payload"]
        status = p.get("order_status")
        part = f"  ({p.get('filled_quantity')}/{p.get('order_quantity')})" \
            if status == "PARTIAL" else ""
        write(f"{ist_time(p.get('ts'))}  FILL   {p.get('side', ''):<4} {p.get('quantity', ''):>5} "
              f"{p.get('symbol', ''):<12} @ {inr(p.get('price'))}  charges {inr(p.get('fees'))}"
              f"{part}")

    def on_reject(event) -> None:
        p = event["payload"]
        rule = p.get("rule") or "rejected"
        write(f"{ist_time(p.get('ts'))}  REJECT {p.get('side', ''):<4} {p.get('quantity', ''):>5} "
              f"{p.get('symbol', ''):<12} [{rule}] {p.get('message', '')}")

    def on_halt(event) -> None:
        p = event["payload"]
        write(f"{ist_time(p.get('ts'))}  HALTED {p.get('reason', '')}")

    bus.subscribe("order.filled", on_fill)
    bus.subscribe("order.rejected", on_reject)
    bus.subscribe("risk.halted", on_halt)


def _cell(v) -> str:
    return "-" if v is None else str(v)


def format_view(view: dict, orders: int = 10) -> str:
    """The text ``hftcore dashboard`` prints for a ``DashboardFeed.get_view()``."""
    clock = view.get("clock") or {}
    sys_ = view.get("system") or {}
    p = view.get("portfolio") or {}
    market = clock.get("market_ts")
    lines = [
        (f"market {ist_time(market, '%Y-%m-%d %H:%M:%S')} IST   status {sys_.get('status', '-')}"
        f"   mode {sys_.get('mode', '-')}   events {inr(sys_.get('events'), 0)}"),
        "",
    ]
    figures = [("capital", "initial_capital"), ("cash", "cash"), ("equity", "equity"),
               ("net PnL", "net_pnl"), ("realized PnL", "realized_pnl"),
               ("unrealized PnL", "unrealized_pnl"), ("charges", "charges"),
               ("exposure", "exposure"), ("drawdown", "drawdown"),
               ("max drawdown", "max_drawdown")]
    for label, key in figures:
        lines.append(f"{label:>16} {inr(p.get(key)):>16}")
    lines.append(f"{'open positions':>16} {_cell(p.get('position_count')):>16}")
    for b in view.get("banners") or []:
        lines.append(f"!! {b.get('text', '')}")
    positions = view.get("positions") or []
    if positions:
        lines += ["", (f"  {'symbol':<12}{'qty':>7}{'avg':>12}{'LTP':>12}{'unrealized':>14}"
                      f"{'realized':>14}{'charges':>11}{'net':>14}")]
        for x in positions:
            lines.append(f"  {_cell(x.get('symbol')):<12}{inr(x.get('quantity'), 0):>7}"
                         f"{inr(x.get('avg_price')):>12}{inr(x.get('last_price')):>12}"
                         f"{inr(x.get('unrealized_pnl')):>14}{inr(x.get('realized_pnl')):>14}"
                         f"{inr(x.get('charges')):>11}{inr(x.get('net_pnl')):>14}")
    rows = (view.get("orders") or [])[:orders]
    if rows:
        lines += ["", (f"  {'time':<9}{'symbol':<12}{'side':<5}{'filled/qty':>12}{'price':>12}  "
                      f"status")]
        for o in rows:
            price = o.get("avg_price") if o.get("avg_price") is not None else o.get("price")
            why = ""
            if o.get("status") == "REJECTED":
                why = f"  [{o.get('rule') or '-'}] {o.get('message') or ''}"
            lines.append(f"  {ist_time(o.get('ts')):<9}{_cell(o.get('symbol')):<12}"
                         f"{_cell(o.get('side')):<5}"
                         f"{inr(o.get('filled_quantity'), 0) + '/' + inr(o.get('quantity'), 0):>12}"
                         f"{inr(price):>12}  {_cell(o.get('status'))}{why}")
    stale = [s for s in view.get("stale") or [] if s.get("stale")]
    if stale:
        lines += ["", "stale market data: " + ", ".join(
            f"{s.get('symbol')} ({s.get('reason') or 'no ticks'})" for s in stale)]
    return "\n".join(lines)
