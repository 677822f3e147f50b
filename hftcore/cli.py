"""The ``hftcore`` command (also ``python -m hftcore``).

    hftcore demo       a synthetic NSE session through all six services (paper)
    hftcore backtest   replay CSV ticks or Kite candles; summary + report folder
    hftcore paper      a paper session in (scaled) real time until Ctrl-C
    hftcore dashboard  print a running paper session's dashboard (--json: the snapshot)
    hftcore config     print the documented example configuration
    hftcore login      Kite login: request token -> access token file (0600)
    hftcore data fetch Kite historical candles into the CSV format backtest reads
    hftcore live       the paper session with KiteTickerFeed and KiteBroker (real orders)
    hftcore report compare RUN_A RUN_B   two summaries side by side
    hftcore optimize   parameter sweeps (grid/random, walk-forward) on Dask
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from .config import EXAMPLE, Config, ConfigError


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


def _config(args) -> Config:
    cfg = Config.load(args.config) if getattr(args, "config", None) else Config()
    if getattr(args, "capital", None) is not None:
        cfg.capital = args.capital
    if getattr(args, "symbols", None):
        cfg.symbols = [s.upper() for s in args.symbols]
    if getattr(args, "strategy", None):
        cfg.strategies = {name: cfg.strategies.get(name, {"weight": 1.0}) for name in args.strategy}
    if getattr(args, "param", None):
        from .plugins import apply_cli_params
        cfg.strategies = apply_cli_params(cfg.strategies, args.param)
    if getattr(args, "quantity", None) is not None:
        cfg.quantity = args.quantity
    if getattr(args, "charges", None):
        cfg.charges = args.charges
    if getattr(args, "no_square_off", False):
        cfg.square_off = False
    cfg.validate()
    return cfg


def _instruments(cfg: Config):
    from .instruments import load_instruments
    try:
        return load_instruments(cfg.instruments)
    except FileNotFoundError:
        raise UserError(f"instruments file not found: {cfg.instruments}") from None


def _progress(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 40
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} ticks")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- commands

def cmd_demo(args) -> int:
    from .feeds import SyntheticFeed
    from .session import PaperSession
    cfg = _config(args)
    instruments = _instruments(cfg)
    missing = [s for s in cfg.symbols if s not in instruments]
    if missing:
        raise UserError(f"unknown symbol(s): {', '.join(missing)}")
    feed = SyntheticFeed(cfg.symbols, instruments=instruments, seed=args.seed, days=args.days)
    session = PaperSession(feed, **cfg.session_kwargs())
    session.run()
    print(f"hftcore demo: {len(cfg.symbols)} NSE symbols, {args.days} synthetic session(s), "
          f"seed {args.seed}, paper mode\n")
    print(session.summary())
    snap = session.dashboard.get_snapshot()
    print("\ndashboard snapshot:", json.dumps(
        {"signals": len(snap["signals"]), "orders": len(snap["orders"]),
         "positions": snap["positions"], "portfolio": snap["portfolio"],
         "system": {k: v for k, v in snap["system"].items() if k not in ("events", "alerts")}},
        indent=2))
    if args.json:
        print(json.dumps(snap, indent=2))
    return 0


def cmd_backtest(args) -> int:
    from pathlib import Path

    from .report import format_summary
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    cfg = _config(args)
    feed = load_feed(args, cfg, _instruments(cfg))    # a bad file stops here, before --out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    interrupted = {"now": False}

    def request_stop(signum, frame):
        if interrupted["now"]:                   # a second Ctrl-C: stop right away
            raise KeyboardInterrupt
        interrupted["now"] = True
    # Ctrl-C ends the run after the current slice; the report is written, marked partial
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        m = run_backtest(args, cfg, feed, out=out, progress=_progress,
                         stop=lambda: interrupted["now"])
    finally:
        signal.signal(signal.SIGINT, previous)
    print(format_summary(m, verbose=getattr(args, "verbose", False)))
    print(f"\nreport: {out}/ (trades.csv, fills.csv, equity.png, report.html, summary.json)")
    if interrupted["now"]:
        print(f"hftcore: interrupted: partial report ({m.get('ticks', 0):,} ticks) in {out}/",
              file=sys.stderr)
        return 130
    return 0


def load_feed(args, cfg: Config, instruments):
    """The backtest's feed: ``args.data`` (a CSV file or folder), cut to ``--symbols``."""
    from pathlib import Path

    from .feeds import ReplayFeed
    if not Path(args.data).exists():
        raise UserError(f"data not found: {args.data}")
    feed = ReplayFeed(args.data, instruments=instruments)
    feed.data()                           # read now: a bad file is one line, exit 2
    if feed.rows_skipped:
        why = ", ".join(f"{r}: {n}" for r, n in getattr(feed, "quarantined", {}).items())
        print(f"warning: skipped {feed.rows_skipped} malformed rows in {args.data}"
              + (f" ({why})" if why else ""), file=sys.stderr)
    if args.symbols:
        unknown = [s for s in cfg.symbols if s not in instruments]
        if unknown:
            raise UserError(f"unknown symbol(s): {', '.join(unknown)}")
        feed = _only(feed, cfg.symbols)
    return feed


def run_backtest(args, cfg: Config | None = None, feed=None, out=None, progress=None,
                 stop=None) -> dict:
    """One backtest exactly as ``hftcore backtest`` runs it; returns the summary dict.

    ``cfg`` defaults to the one the flags describe, ``feed`` to ``load_feed``; with
    ``out`` the report folder is written too (``hftcore optimize`` passes its own
    config and a feed it loaded once, and no folder).  ``stop()`` returning True ends
    the replay early; the summary then says ``"partial": true``."""
    from pathlib import Path

    from .feeds import Bars
    from .report import metrics, prepare_png, provenance, write_report
    from .session import PaperSession
    cfg = cfg if cfg is not None else _config(args)
    if feed is None:
        feed = load_feed(args, cfg, _instruments(cfg))
    kwargs = cfg.session_kwargs()
    if isinstance(feed.data(), Bars) and args.primary is None:
        # candles: decide on the bar's own timeframe unless told otherwise; a strategy
        # engine of its own (ema_cross, a plug-in engine) decides on every bar, as
        # backtesting.py does
        from .engines.market_data import parse_timeframe
        from .engines.strategy import StrategyEngineV3
        span = feed.data().span_s
        if parse_timeframe(cfg.primary_tf) < span or \
                not isinstance(kwargs["strategy_engine"], StrategyEngineV3):
            kwargs["primary_tf"] = kwargs["secondary_tf"] = f"{span}s"
    if args.primary:
        kwargs["primary_tf"] = args.primary
    if getattr(args, "fill_at", None):
        kwargs["fill_at"] = args.fill_at
    warm = None
    if getattr(args, "warmup_days", 0):
        warm, feed = _split_warmup(feed, args.warmup_days)
    session = PaperSession(feed, **kwargs)
    if warm is not None:
        session.warm_up(warm)
    if out is not None:                  # matplotlib loads on the idle core while it runs
        prepare_png(len(feed.data()))
    session.run(progress=progress, stop=stop)
    partial = {"partial": True} if stop is not None and stop() else {}
    if out is None:
        return {**metrics(session), **partial}
    prov = provenance(cfg, args.data, argv=getattr(args, "argv", None),
                      config_path=getattr(args, "config", None))
    title = f"hftcore backtest: {Path(args.data).name}"
    return write_report(session, Path(out), title=title + (" (PARTIAL: interrupted)" if partial
                                                           else ""),
                        provenance=prov, verbose=getattr(args, "verbose", False), extra=partial)


def _split_warmup(feed, days: int):
    """(the first ``days`` IST trading days of the feed's data, a feed of the rest):
    the first part only warms the indicators."""
    import numpy as np

    from .feeds import ArrayFeed
    if days < 0:
        raise UserError(f"--warmup-days must be >= 0, got {days}")
    data = feed.data()
    day = (data.ts_ns + 19_800 * 10**9) // (86_400 * 10**9)
    firsts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    if days >= len(firsts):
        raise UserError(f"--warmup-days {days}: the data has only {len(firsts)} trading "
                        f"day(s), nothing would be left to trade")
    cut = int(firsts[days])
    warm, rest = (type(data)(*(f[a:b] if isinstance(f, np.ndarray) else f for f in data))
                  for a, b in ((0, cut), (cut, len(data))))
    return warm, ArrayFeed(rest, feed.instruments)


def _only(feed, symbols):
    import numpy as np

    from .feeds import ArrayFeed
    data = feed.data()
    ids = [feed.instruments.id_of(s) for s in symbols]
    keep = np.isin(data.sym, ids)
    if not keep.any():
        raise UserError(f"no data for {', '.join(symbols)} in the file")
    sliced = type(data)(*(f[keep] if isinstance(f, np.ndarray) else f for f in data))
    return ArrayFeed(sliced, feed.instruments)


def cmd_paper(args) -> int:
    from .feeds import ReplayFeed, SyntheticFeed
    from .session import PaperSession
    cfg = _config(args)
    if args.feed == "kite":
        return _paper_on_kite(args, cfg)
    instruments = _instruments(cfg)
    feed: SyntheticFeed | ReplayFeed
    if args.feed == "synthetic":
        feed = SyntheticFeed(cfg.symbols, instruments=instruments, seed=args.seed)
    elif args.feed.startswith("replay:"):
        feed = ReplayFeed(args.feed[len("replay:"):], instruments=instruments)
    else:
        raise UserError(f"--feed must be synthetic, replay:PATH or kite, got {args.feed!r}")
    if not args.speed > 0:
        raise UserError("--speed must be > 0")
    if not args.duration >= 0:
        raise UserError(f"--duration must be >= 0 seconds (0: until Ctrl-C), got {args.duration:g}")
    kwargs = cfg.session_kwargs()
    warm = None
    if getattr(args, "warmup_days", 0):
        if not isinstance(feed, ReplayFeed):
            raise UserError("--warmup-days needs history: --feed replay:PATH or kite")
        feed.data()
        warm, feed = _split_warmup(feed, args.warmup_days)
    session = PaperSession(feed, checkpoint_dir=args.checkpoint_dir, **kwargs)
    if warm is not None:
        session.warm_up(warm)
    server = None
    try:
        restored = session.portfolio.restored
        if restored:
            if args.capital is not None and \
                    round(args.capital * 100) != round(restored["capital"] * 100):
                raise UserError(
                    f"--capital {args.capital:,.2f} conflicts with the portfolio restored from "
                    f"{args.checkpoint_dir} (capital {restored['capital']:,.2f}); leave --capital "
                    f"out or use another --checkpoint-dir")
            corrupt = restored["journal_corrupt"]
            print(f"restored portfolio from {args.checkpoint_dir}: {restored['fills']} fills, "
                  f"capital {restored['capital']:,.2f}"
                  + (f"; {corrupt} corrupt journal record(s) skipped (see the errors above)"
                     if corrupt else ""), flush=True)
        if not args.quiet:
            from .console import print_fills
            print_fills(session.bus)              # fills, rejections and halts as they happen
        server = _serve_dashboard(session, args) if args.dashboard else None
    except BaseException:
        session.portfolio.close()
        raise
    session.dashboard.update_system_state("status", "running")
    session.dashboard.update_system_state("mode", "paper")
    started = time.monotonic()
    started_wall = time.perf_counter()
    stop = {"now": False}

    def request_stop(signum, frame):
        if stop["now"]:                       # a second Ctrl-C: stop right away
            raise KeyboardInterrupt
        stop["now"] = True
        print("\nstopping: checkpointing and writing the summary ...", file=sys.stderr)
    # Ctrl-C and SIGTERM finish the current step, then checkpoint and exit cleanly
    # (set explicitly: a shell may start background jobs with SIGINT ignored).
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    data = feed.data()
    t0 = int(data.ts_ns[0]) if len(data) else 0

    def pace() -> bool:
        # sleep until wall time catches up with market time / speed
        if stop["now"] or (args.duration and time.monotonic() - started >= args.duration):
            return True
        due = started + (session.now_ns - t0) / 1e9 / args.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 1.0))
        return False

    try:
        for batch in feed.batches(1.0):
            session.step(batch)
            if pace():
                break
        else:
            if session.square_off:
                session.flatten()
        session.finish(started_wall)
        while server is not None and not stop["now"] and (
                not args.duration or time.monotonic() - started < args.duration):
            time.sleep(0.2)                      # keep serving the final state
    except KeyboardInterrupt:                    # a second Ctrl-C: no more serving
        print("\ninterrupted", file=sys.stderr)
        session.finish(started_wall)
    finally:
        session.portfolio.close()
        if server is not None:
            server.stop()
    print(session.summary())
    if args.checkpoint_dir:
        print(f"checkpoint: {args.checkpoint_dir}")
    return 0


def _paper_on_kite(args, cfg) -> int:
    """Paper trading on live Kite ticks: KiteTickerFeed into the same PaperSession."""
    from .kite.connect import open_kite
    from .session import PaperSession
    link = open_kite(cfg.symbols, token_file=args.token_file, root=args.kite_root,
                     ws_url=args.kite_ws, mode=args.kite_mode, start=False)
    session = PaperSession(link.feed, checkpoint_dir=args.checkpoint_dir, **cfg.session_kwargs())
    _warm_from_kite(session, link, cfg, args)
    return _run_on_kite(session, link, args, "paper (Kite ticks)")


def _warm_from_kite(session, link, cfg, args) -> None:
    """``--warmup-days N``: the last N days of 1-minute candles from Kite's historical
    API warm the indicators before the first tick."""
    days = getattr(args, "warmup_days", 0)
    if not days:
        return
    from .kite.connect import history_bars
    try:
        bars = history_bars(link.kite, link.instruments, cfg.symbols, days)
    except Exception as exc:
        link.close()
        session.portfolio.close()
        raise UserError(f"--warmup-days: fetching history failed: {exc}") from None
    closed = session.warm_up(bars)
    print(f"warm-up: {len(bars):,} candles of the last {days} day(s), {closed:,} closed",
          file=sys.stderr, flush=True)


def _run_on_kite(session, link, args, mode: str, live: bool = False) -> int:
    """Drive ``session`` from the Kite ticker until Ctrl-C / --duration / a halt."""
    from .kite.feed import NS
    link.feed.bus, link.feed.engine = session.bus, session.engine
    link.feed.start()
    if not link.feed.wait_connected(10):
        link.close()
        session.portfolio.close()
        raise UserError(link.feed.error or "could not connect to the Kite ticker")
    server = _serve_dashboard(session, args) if args.dashboard else None
    session.dashboard.update_system_state("status", "running")
    session.dashboard.update_system_state("mode", mode)
    started, started_wall = time.monotonic(), time.perf_counter()
    stop = {"now": False}

    def request_stop(signum, frame):
        stop["now"] = True
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    def done() -> bool:
        return (stop["now"] or bool(args.duration and time.monotonic() - started >= args.duration)
                or (live and link.broker.halted))
    squared = False
    cutoff = _square_off_minutes(args.square_off_time)
    try:
        for batch in link.feed.batches(1.0, stop=done):
            if len(batch):
                session.step(batch)
            link.feed.poll()                    # candles close on the clock between ticks
            session.dashboard.update_system_state("feed_staleness", link.feed.staleness())
            ist_minutes = ((session.now_ns // NS + 19800) // 60) % 1440
            if cutoff is not None and session.square_off and len(batch) \
                    and ist_minutes >= cutoff:
                _flatten(session, link.broker if live else None)   # Zerodha squares MIS
                squared = True                  # off from 15:20 IST: flat, and the day is over
                break
        if link.feed.halted:
            print(f"hftcore: ticker stopped: {link.feed.error}", file=sys.stderr)
            if live:                            # the same token: stop trading with it too
                link.broker.halt(f"ticker: {link.feed.error}")
        if live and link.broker.halted:
            print(f"hftcore: trading halted: {link.broker.halt_reason}", file=sys.stderr)
        if session.square_off and not squared and not (live and link.broker.halted):
            _flatten(session, link.broker if live else None)
        elif live:
            _settle(link.broker, session)
        session.finish(started_wall)
        if getattr(args, "out", None):
            from .report import write_report
            write_report(session, args.out, title=f"hftcore {mode}")
            print(f"report: {args.out}/ (fills.csv, trades.csv, report.html, summary.json)")
    finally:
        link.close()
        session.portfolio.close()
        if server is not None:
            server.stop()
    print(session.summary())
    return 0


def _square_off_minutes(text: str):
    """"HH:MM" (IST) -> minutes after midnight; "none" -> None."""
    if text.lower() == "none":
        return None
    try:
        h, m = (int(x) for x in text.split(":"))
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError
    except ValueError:
        raise UserError(f"--square-off-time must be HH:MM or none, got {text!r}") from None
    return h * 60 + m


def _flatten(session, broker=None) -> None:
    """Square off; on Kite, first let the orders in flight land in the portfolio, then
    wait for the square-off's own fills."""
    if broker is not None:
        _settle(broker, session)
    session.flatten()
    if broker is not None:
        _settle(broker, session)


def _settle(broker, session=None, seconds: float = 5.0) -> None:
    """Wait for the last orders' fills (order updates, then polling) to be booked."""
    end = time.monotonic() + seconds

    def pending() -> bool:
        return bool(broker.open_orders()) or (session is not None
                                              and len(session.fills) < broker.fill_count())
    while pending() and time.monotonic() < end:
        time.sleep(0.02)
    broker.poll()


def cmd_live(args) -> int:
    from .kite.connect import open_kite
    from .session import PaperSession
    cfg = _config(args)
    if not args.confirm_live:
        raise UserError("live trading sends real orders to Zerodha with real money; run "
                        "again with --confirm-live (try a dry run against "
                        "`python -m hftcore.kite.server` first)")
    print("WARNING: LIVE TRADING. Orders go to Kite Connect"
          f"{' at ' + args.kite_root if args.kite_root else ''} with real money.",
          file=sys.stderr, flush=True)
    link = open_kite(cfg.symbols, token_file=args.token_file, root=args.kite_root,
                     ws_url=args.kite_ws, mode=args.kite_mode, start=False,
                     market_protection=args.market_protection)
    # the same session, with Kite in place of the paper broker (ExecutionService in
    # "live" mode publishes risk.halted when the broker halts, e.g. an expired token)
    session = PaperSession(link.feed, checkpoint_dir=args.checkpoint_dir, broker=link.broker,
                           **cfg.session_kwargs())
    _warm_from_kite(session, link, cfg, args)
    report = link.broker.require_reconciled(session.portfolio, adopt=args.adopt_broker_positions)
    print(report.summary(), file=sys.stderr, flush=True)
    if link.broker.halted:
        link.close()
        session.portfolio.close()
        raise UserError(f"refusing to trade: {link.broker.halt_reason}")
    return _run_on_kite(session, link, args, "live", live=True)


def cmd_data_fetch(args) -> int:
    import datetime as dt

    from .kite import auth
    from .kite.connect import fetch_candles, kite_client
    from .kite.instruments import load_kite_instruments
    try:
        start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    except ValueError as exc:
        raise UserError(f"--from/--to must be YYYY-MM-DD: {exc}") from None
    kite = kite_client(auth.load_credentials(args.token_file), args.kite_root)
    instruments = load_kite_instruments(kite)
    symbols = [s.upper() for s in args.symbols]
    try:
        written = fetch_candles(kite, instruments, symbols, start, end, args.interval, args.out)
    except Exception as exc:  # noqa: BLE001 - a Kite error: one line, secrets masked
        raise UserError(f"data fetch failed: {auth.redact(exc)}") from None
    for sym, n in written.items():
        print(f"{sym}: {n} candles -> {args.out}/{sym}.csv")
    return 0


def cmd_login(args) -> int:
    import getpass
    import os

    from .kite import auth

    api_key = args.api_key or os.environ.get(auth.ENV_KEY, "")
    if not api_key:
        raise UserError(f"no API key: pass --api-key or set {auth.ENV_KEY}")
    secret = os.environ.get(auth.ENV_SECRET, "")
    if not secret:
        if not sys.stdin.isatty():
            raise UserError(f"no API secret: set {auth.ENV_SECRET}")
        secret = getpass.getpass("Kite API secret: ")
    auth.install_redaction(api_key, secret)
    print(f"1. Log in at: {auth.login_url(api_key)}", flush=True)
    text = args.request_token
    if not text:
        print("2. Paste the redirect URL (or its request_token): ", end="", flush=True)
        text = sys.stdin.readline()
    try:
        request_token = auth.parse_request_token(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        creds = auth.exchange_request_token(api_key, secret, request_token,
                                            token_file=args.token_file, root=args.root)
    except Exception as exc:  # noqa: BLE001 - TokenException, a network error, ...
        raise UserError(f"login failed: {auth.redact(exc)}") from None
    expires = creds.expires_at
    print(f"access token saved to {creds.source} (mode 0600)"
          + (f"; it expires {expires.astimezone(auth.IST):%Y-%m-%d %H:%M} IST" if expires else ""))
    return 0


def _serve_dashboard(session, args):
    from .web import LOOPBACK, serve_session
    remote = args.bind not in LOOPBACK
    if remote and not args.i_know:
        raise UserError(f"--bind {args.bind} would expose positions and PnL beyond this machine; "
                        f"add --i-know to do it anyway")
    try:
        server = serve_session(session, args.bind, args.port, allow_remote=remote)
    except OSError as exc:
        raise UserError(f"--port {args.port}: cannot serve the dashboard on {args.bind}: "
                        f"{exc.strerror or exc}") from None
    if remote:
        print(f"warning: the dashboard listens on {args.bind}:{server.port}; anyone who can "
              f"reach it and has the token sees positions and PnL", file=sys.stderr)
    print(f"dashboard: {server.url}", flush=True)
    print(f"dashboard token: {server.token_file} (for hftcore dashboard)", flush=True)
    return server


def cmd_dashboard(args) -> int:
    from .console import format_view
    from .web import read_token, token_path
    path = token_path(args.port)
    token = args.token or read_token(path)
    if not token:
        raise UserError(f"no dashboard token for port {args.port} in {path} "
                        f"(start one with: hftcore paper --dashboard, or pass --token)")
    route = "/api/snapshot" if args.json else "/api/view"
    req = urllib.request.Request(f"http://127.0.0.1:{args.port}{route}",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            data = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise UserError(f"the dashboard on port {args.port} answered {exc.code} "
                        f"({'wrong or old token' if exc.code in (401, 403) else exc.reason})"
                        ) from None
    except (urllib.error.URLError, OSError, ValueError):
        raise UserError(f"no paper session with a dashboard on port {args.port} "
                        f"(start one with: hftcore paper --dashboard)") from None
    print(json.dumps(data, indent=2) if args.json else format_view(data))
    return 0


def _read_summary(path: str) -> dict:
    from pathlib import Path
    p = Path(path)
    f = p / "summary.json" if p.is_dir() else p
    if not f.is_file():
        raise UserError(f"no summary.json in {path}")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{f}: not a summary.json: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{f}: not a summary.json (expected an object)")
    return data


def cmd_report_compare(args) -> int:
    from .report import compare_summaries
    a, b = _read_summary(args.run_a), _read_summary(args.run_b)
    print(compare_summaries(a, b, args.run_a, args.run_b))
    return 0


def cmd_optimize(args) -> int:
    from pathlib import Path

    from . import research as rs
    from .report import format_stat
    cfg = _config(args)
    grid = rs.parse_grid(args.grid)
    where = rs.resolve_names(cfg, grid)
    if args.maximize not in rs.RESULT_COLUMNS:
        raise UserError(f"--maximize {args.maximize!r} is not a statistic "
                        f"(one of: {', '.join(rs.RESULT_COLUMNS)})")
    sets = rs.param_sets(grid, args.constraint or [], args.random, args.seed)
    sets, bad = rs.valid_sets(cfg, sets, where)
    if bad:
        print(f"warning: skipped {len(bad)} parameter set(s) the configuration rejects "
              f"(first: {bad[0][0]}: {bad[0][1]})", file=sys.stderr)
    if not sets:
        raise UserError("no parameter set is valid for the configuration")
    feed = load_feed(args, cfg, _instruments(cfg))
    wins = None
    if args.walk_forward:
        train, sep, test = args.walk_forward.partition(":")
        if not sep or not train.isdigit() or not test.isdigit():
            raise UserError(f"--walk-forward takes TRAIN:TEST days, got {args.walk_forward!r}")
        wins = rs.windows(feed.data(), int(train), int(test))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.shared_data:                   # every worker reads --data itself, once
        payload = rs.payload_for(args, cfg, None, None, list(grid))
    else:                                  # scattered from here, once per worker
        payload = rs.payload_for(args, cfg, feed.data(), feed.instruments, list(grid))
    names = list(grid)
    runs = len(sets) * (len(wins) if wins else 1)
    print(f"hftcore optimize: {len(sets)} parameter set(s), {runs} backtest(s) on "
          f"{args.scheduler or f'{args.workers} local worker(s)'}", file=sys.stderr)
    with rs.Runner(payload, args.workers, args.scheduler) as runner:
        if wins:
            rows, oos = rs.walk_forward(runner, sets, wins, args.maximize)
            from .report import stat_number
            blind = [r["window"] for r in oos if not math.isfinite(
                stat_number(args.maximize, r[f"in-sample {args.maximize}"]))]
            if blind:
                print(f"warning: {args.maximize} is undefined in-sample in window(s) "
                      f"{', '.join(map(str, blind))} (too few days?); the first set was taken",
                      file=sys.stderr)
        else:
            rows = rs.sweep(runner, sets)
    written = ["results.csv"]
    if wins:
        rs.write_table(out / "results.csv", rows, ["window", *names, *rs.RESULT_COLUMNS])
        wf_cols = [*oos[0]]
        rs.write_table(out / "walk_forward.csv", oos, wf_cols)
        written.append("walk_forward.csv")
        print(f"{'window':>6}  {'test days':<23} " + " ".join(f"{n:>12}" for n in names)
              + f"  {'in-sample':>12}  {'out-of-sample':>13}  ({args.maximize})")
        for r in oos:
            print(f"{r['window']:>6}  {r['test_start'][:10]}..{r['test_end'][:10]} "
                  + " ".join(f"{r[n]!s:>12}" for n in names)
                  + f"  {format_stat(args.maximize, r[f'in-sample {args.maximize}']):>12}"
                  + f"  {format_stat(args.maximize, r[args.maximize]):>13}")
    else:
        for r, k in zip(rows, rs.rank(rows, args.maximize)):
            r["rank"] = k
        columns = [*names, "rank", *rs.RESULT_COLUMNS]
        rs.write_table(out / "results.csv", rows, columns)
        if rs.write_parquet(out / "results.parquet", rows, columns):
            written.append("results.parquet")
        if len(names) >= 2:
            (out / "heatmap.html").write_text(
                rs.heatmap_html(rows, names[0], names[1], args.maximize), encoding="utf-8")
            written.append("heatmap.html")
        top = sorted(rows, key=lambda r: r["rank"])[:args.top]
        shown = [args.maximize] + [k for k in ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]",
                                               "# Trades") if k != args.maximize]
        print(f"{'rank':>4}  " + " ".join(f"{n:>12}" for n in names) + "  "
              + "  ".join(f"{k:>18}" for k in shown))
        for r in top:
            print(f"{r['rank']:>4}  " + " ".join(f"{r[n]!s:>12}" for n in names) + "  "
                  + "  ".join(f"{format_stat(k, r[k]):>18}" for k in shown))
    print(f"\nresults: {out}/ ({', '.join(written)})")
    return 0


def cmd_config(args) -> int:
    if args.check:
        Config.load(args.check)
        print(f"{args.check}: ok")
        return 0
    print(EXAMPLE, end="")
    return 0


# ---------------------------------------------------------------- parser

def kite_args(p) -> None:
    """Options shared by the commands that talk to Kite."""
    p.add_argument("--token-file", help="default: ~/.config/hftcore/kite_token.json")
    p.add_argument("--kite-root", help="Kite REST root (default api.kite.trade; a local "
                                       "`python -m hftcore.kite.server` for a dry run)")
    p.add_argument("--kite-ws", help="Kite ticker root (default wss://ws.kite.trade)")


def kite_session_args(p) -> None:
    """Options of the sessions that run on Kite ticks (paper --feed kite, live)."""
    p.add_argument("--kite-mode", default="quote", choices=("ltp", "quote", "full"))
    p.add_argument("--warmup-days", type=int, default=0, metavar="N",
                   help="warm the indicators before the first tick: with --feed kite the "
                        "last N days of 1-minute candles from Kite's historical API, with "
                        "--feed replay:PATH the file's first N trading days")
    p.add_argument("--square-off-time", default="15:20",
                   help="IST time (tick time) to flatten MIS positions and end the day, "
                        "or none")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    ap = argparse.ArgumentParser(prog="hftcore", description="Event-driven NSE trading "
                                 "with a compiled core: paper, backtest, live dashboard.")
    ap.add_argument("--version", action="version", version=f"hftcore {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="log info too (warnings and errors are always logged)")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p, symbols=True):
        p.add_argument("--config", help="YAML configuration (hftcore config --example)")
        p.add_argument("--capital", type=float, help="initial capital in rupees")
        p.add_argument("--strategy", nargs="+", action="extend",
                       help="strategies to run (default: ema_trend rsi_reversion "
                            "vwap_reversion); ema_cross, FILE.py:Class or module:Class")
        p.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="a strategy parameter (STRATEGY.NAME=VALUE with several), "
                            "typed by its constructor; repeatable")
        p.add_argument("--quantity", type=int, help="units per order / target position size")
        p.add_argument("--charges", choices=("zerodha_intraday", "zero"),
                       help="the charges model (default: the config's)")
        p.add_argument("--no-square-off", action="store_true",
                       help="keep positions overnight (no MIS square-off)")
        if symbols:
            p.add_argument("--symbols", nargs="+", help="NSE symbols")

    p = sub.add_parser("demo", help="a synthetic NSE session through all six services")
    common(p)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--json", action="store_true", help="also print the full dashboard snapshot")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("backtest", help="replay CSV data through the services, write a report")
    common(p)
    p.add_argument("--data", required=True, help="CSV file or folder (ticks or Kite candles)")
    p.add_argument("--out", default="reports/backtest", help="report folder")
    p.add_argument("--primary", help="decision timeframe (default: config / the bar length)")
    p.add_argument("--warmup-days", type=int, default=0, metavar="N",
                   help="the first N trading days of the data only warm the indicators "
                        "(no trading)")
    p.add_argument("--fill-at", choices=("close", "next_open"),
                   help="bars: fill at the deciding bar's close or the next bar's open "
                        "(default next_open)")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("paper", help="paper trading in (scaled) real time until Ctrl-C")
    common(p)
    p.add_argument("--feed", default="synthetic",
                   help="synthetic, replay:PATH, or kite (live ticks; see hftcore login)")
    kite_args(p)
    kite_session_args(p)
    p.add_argument("--speed", type=float, default=1.0, help="market seconds per wall second")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dashboard", action="store_true", help="serve the web dashboard")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--bind", default="127.0.0.1", help="dashboard address (loopback by default)")
    p.add_argument("--i-know", action="store_true",
                   help="allow --bind beyond loopback (exposes positions and PnL)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print fills as they happen")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.add_argument("--checkpoint-dir", default="artifacts/portfolio")
    p.set_defaults(func=cmd_paper)

    p = sub.add_parser("dashboard", help="show a running paper session's dashboard")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token", help="access token (default: the session's token file)")
    p.add_argument("--json", action="store_true", help="print the full JSON snapshot")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("live", help="live trading on Kite (needs --confirm-live)")
    common(p)
    kite_args(p)
    kite_session_args(p)
    p.add_argument("--confirm-live", action="store_true",
                   help="required: orders go to Zerodha with real money")
    p.add_argument("--adopt-broker-positions", action="store_true",
                   help="on a reconciliation mismatch take Kite's positions (default: refuse)")
    p.add_argument("--market-protection", type=float, default=-1,
                   help="for MARKET / SL-M orders: -1 (Kite's automatic) or a percentage")
    p.add_argument("--dashboard", action="store_true", help="serve the web dashboard")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--bind", default="127.0.0.1", help="dashboard address (loopback by default)")
    p.add_argument("--i-know", action="store_true",
                   help="allow --bind beyond loopback (exposes positions and PnL)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.add_argument("--checkpoint-dir", default="artifacts/live-portfolio")
    p.add_argument("--out", default="reports/live", help="session report folder")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("data", help="market data utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("fetch", help="Kite historical candles -> CSV files for backtest")
    p.add_argument("--symbols", nargs="+", required=True)
    p.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
    p.add_argument("--interval", default="5minute",
                   help="minute, 3minute, 5minute, 10minute, 15minute, 30minute, 60minute, day")
    p.add_argument("--out", default="data", help="folder for SYMBOL.csv files")
    kite_args(p)
    p.set_defaults(func=cmd_data_fetch)

    p = sub.add_parser("login", help="Kite login: store the day's access token (0600)")
    p.add_argument("--api-key", help="default: $KITE_API_KEY (the secret: $KITE_API_SECRET "
                                     "or a prompt, never an argument)")
    p.add_argument("--request-token", help="the redirect URL or its request_token "
                                           "(default: read from stdin)")
    p.add_argument("--token-file", help="default: ~/.config/hftcore/kite_token.json")
    p.add_argument("--root", help="Kite API root (e.g. a local `python -m "
                                  "hftcore.kite.server` for a dry run)")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("optimize", help="parameter sweep (grid/random, walk-forward) on Dask")
    for action in sub.choices["backtest"]._actions:          # every backtest flag but --out
        if action.dest not in ("help", "out"):
            p._add_action(copy.copy(action))
    p.add_argument("--grid", action="append", metavar="NAME=VALUES", required=True,
                   help="a swept parameter: fast=5,10,20 or fast=5:50:5 (inclusive); "
                        "STRATEGY.PARAM or a config key (indicators.ema_fast) also work")
    p.add_argument("--constraint", action="append", metavar="EXPR",
                   help='a condition on the parameters, e.g. "fast < slow"')
    p.add_argument("--random", type=int, metavar="N", help="N random sets of the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of --random")
    p.add_argument("--maximize", default="Sharpe Ratio", help="the statistic to rank by")
    p.add_argument("--walk-forward", metavar="TRAIN:TEST",
                   help="rolling windows of TRAIN trading days in-sample, TEST out-of-sample")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="local worker processes (default: the cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask scheduler")
    p.add_argument("--shared-data", action="store_true",
                   help="workers read --data from the same path (a shared filesystem) "
                        "instead of receiving it from this process")
    p.add_argument("--top", type=int, default=10, help="rows to print")
    p.add_argument("--out", default="reports/optimize", help="results folder")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("report", help="work with backtest reports")
    rsub = p.add_subparsers(dest="report_command", required=True)
    q = rsub.add_parser("compare", help="two runs' summary.json side by side, with B - A")
    q.add_argument("run_a", metavar="RUN_A", help="report folder (or its summary.json)")
    q.add_argument("run_b", metavar="RUN_B", help="report folder (or its summary.json)")
    q.set_defaults(func=cmd_report_compare)

    p = sub.add_parser("config", help="print the documented example configuration")
    p.add_argument("--example", action="store_true", help="print the example (the default)")
    p.add_argument("--check", metavar="FILE", help="validate a configuration file")
    p.set_defaults(func=cmd_config)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)     # for the report's provenance
    if args.command in ("demo", "backtest", "paper", "optimize"):
        from .tuning import tune_gc
        tune_gc()                      # this process is ours: fewer GC pauses on decisions
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (UserError, ConfigError) as exc:
        print(f"hftcore: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:                  # bad input caught by a constructor
        print(f"hftcore: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:                     # the file system said no (full, read-only, ...)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hftcore: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hftcore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
