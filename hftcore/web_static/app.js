// hftcore dashboard page. Every value from the server is rendered with textContent or
// DOM calls (never an HTML-parsing property or an HTML string), so a symbol or message cannot become markup.
"use strict";

const IST_OFFSET = 19800;            // seconds; India has no daylight saving
const GAP = 20 * 60;                 // a pause longer than this is not trading time
const $ = id => document.getElementById(id);

// ------------------------------------------------------------------ formatting

// 1234567.891 -> "12,34,567.89" (Indian digit grouping)
function inr(v, dp = 2) {
  if (typeof v !== "number" || !isFinite(v)) return "–";
  let s = Math.abs(v).toFixed(dp);
  const neg = v < 0 && Number(s) !== 0;
  let [i, f] = s.split(".");
  if (i.length > 3) {
    const head = i.slice(0, -3).replace(/\B(?=(\d{2})+(?!\d))/g, ",");
    i = head + "," + i.slice(-3);
  }
  return (neg ? "-" : "") + i + (f !== undefined ? "." + f : "");
}

function istParts(sec) {
  const d = new Date((sec + IST_OFFSET) * 1000);
  const p = n => String(n).padStart(2, "0");
  return {
    date: `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`,
    hm: `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`,
    minutes: d.getUTCHours() * 60 + d.getUTCMinutes(),
    weekday: d.getUTCDay(),
  };
}

const timeOf = sec => (typeof sec === "number" && sec > 0) ? istParts(sec).time : "–";

// NSE equity cash market hours, IST
function marketState(sec) {
  if (typeof sec !== "number" || sec <= 0) return "–";
  const t = istParts(sec);
  if (t.weekday === 0 || t.weekday === 6) return "closed";
  const m = t.minutes;
  if (m < 9 * 60) return "pre-market";
  if (m < 9 * 60 + 15) return "pre-open";
  if (m < 15 * 60 + 30) return "open";
  if (m < 16 * 60) return "closing";
  return "closed";
}

function setText(id, text, cls) {
  const el = $(id);
  if (!el) return;
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

const sign = v => (typeof v === "number" && v > 0.005) ? "pos" : (v < -0.005 ? "neg" : "");
const pillClass = s => "pill " + String(s || "").replace(/[^a-z-]/g, "");
const SIDES = new Set(["BUY", "SELL"]);
const STATUSES = new Set(["OPEN", "TRIGGER PENDING", "PARTIAL", "COMPLETE", "CANCELLED", "REJECTED"]);

// one table row from [text, className] cells
function row(cells, rowClass) {
  const tr = document.createElement("tr");
  if (rowClass) tr.className = rowClass;
  for (const c of cells) {
    const td = document.createElement("td");
    const [text, cls, badge] = Array.isArray(c) ? c : [c];
    if (badge) {
      const span = document.createElement("span");
      span.className = badge;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  return tr;
}

function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
}

const str = v => (v === null || v === undefined) ? "" : String(v);

// ------------------------------------------------------------------ rendering

let lastView = null;

function render(v) {
  lastView = v;
  const clock = v.clock || {};
  if (typeof clock.market_ts === "number") {
    const t = istParts(clock.market_ts);
    setText("market_date", t.date);
    setText("market_time", t.time);
  }
  const ms = marketState(clock.market_ts);
  setText("market_state", "market " + ms, pillClass(ms));
  const sys = v.system || {};
  const halted = (v.banners || []).some(b => b.level === "halt");
  const status = halted ? "halted" : str(sys.status || "–");
  setText("status", status, pillClass(status));
  setText("mode", str(sys.mode));

  const p = v.portfolio || {};
  for (const k of ["initial_capital", "cash", "equity", "realized_pnl", "unrealized_pnl",
                   "charges", "exposure"])
    setText(k, inr(p[k]));
  setText("net_pnl", inr(p.net_pnl), sign(p.net_pnl));
  setText("drawdown", inr(p.drawdown) + " / " + inr(p.max_drawdown));
  setText("position_count", typeof p.position_count === "number" ? String(p.position_count) : "–");

  // banners
  const banners = $("banners");
  banners.replaceChildren(...(v.banners || []).map(b => {
    const d = document.createElement("div");
    d.className = ["halt", "error", "warn", "reject"].includes(b.level) ? b.level : "warn";
    d.textContent = (b.ts ? timeOf(b.ts) + "  " : "") + str(b.text);
    return d;
  }));

  fill("positions", (v.positions || []).map(x => row([
    str(x.symbol), inr(x.quantity, 0), inr(x.avg_price), inr(x.last_price),
    [inr(x.unrealized_pnl), sign(x.unrealized_pnl)], [inr(x.realized_pnl), sign(x.realized_pnl)],
    inr(x.charges), [inr(x.net_pnl), sign(x.net_pnl)]])));

  fill("orders", (v.orders || []).map(o => {
    const st = STATUSES.has(o.status) ? o.status : "";
    const price = typeof o.avg_price === "number" ? o.avg_price : o.price;
    const why = o.status === "REJECTED" ? [o.rule, o.message].filter(Boolean).join(": ")
      : str(o.message);
    return row([
      timeOf(o.ts), str(o.symbol), [str(o.side), SIDES.has(o.side) ? o.side : ""],
      `${inr(o.filled_quantity, 0)} / ${inr(o.quantity, 0)}`, str(o.order_type || ""),
      inr(price), [str(o.status || "–"), "", "st " + st], why], st);
  }));

  fill("stale", (v.stale || []).map(s => row([
    str(s.symbol), timeOf(s.last_tick),
    typeof s.age === "number" ? s.age.toFixed(0) + " s" : "–",
    [s.stale ? "stale" + (s.reason ? ": " + s.reason : "") : "live", "",
     "st " + (s.stale ? "stale" : "ok")]])));

  fill("signals", (v.signals || []).map(s => row([
    timeOf(s.ts), str(s.symbol),
    s.type === "signals.fused" ? "fused" : `${str(s.source)}@${str(s.timeframe)}`,
    [str(s.action), SIDES.has(s.action) ? s.action : ""],
    typeof s.confidence === "number" ? s.confidence.toFixed(2) : "–", str(s.reason)])));

  mergeEquity(v.equity);
}

// ------------------------------------------------------------------ equity history

let equity = {generation: -1, points: []};
let fetching = false;

async function fetchEquity() {
  if (fetching) return;
  fetching = true;
  try {
    const r = await fetch("/api/equity", {credentials: "same-origin"});
    if (r.ok) {
      const h = await r.json();
      equity = {generation: h.generation, points: h.points};
      drawChart();
    }
  } finally {
    fetching = false;
  }
}

// a frame carries the buckets since the previous frame, the whole history (offset 0)
// after the server's buckets merged, or nothing (null: keep the chart)
function mergeEquity(tail) {
  if (!tail) return;
  if (tail.offset === 0) {
    equity = {generation: tail.generation, points: tail.points};
    drawChart();
  } else if (tail.generation === equity.generation && tail.offset <= equity.points.length) {
    equity.points = equity.points.slice(0, tail.offset).concat(tail.points);
    drawChart();
  } else {
    fetchEquity();
  }
}

// trading-time x: pauses longer than GAP (nights, weekends) take no width
function tradingAxis(pts) {
  const xs = new Array(pts.length);
  const breaks = [];
  let acc = 0;
  for (let i = 0; i < pts.length; i++) {
    const [t0, t1] = pts[i];
    if (i > 0) {
      const gap = t0 - pts[i - 1][1];
      if (gap > GAP) breaks.push({x: acc, t: t0});
      else acc += Math.max(gap, 0);
    }
    acc += Math.max(t1 - t0, 0);
    xs[i] = acc;
  }
  return {xs, breaks, span: acc};
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

function drawChart() {
  const c = $("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 600, h = c.clientHeight || 300;
  if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#59636e";
  const pts = equity.points;
  if (!pts.length) {
    g.fillText("no equity readings yet", 80, h / 2);
    return;
  }
  const L = 86, R = 12, T = 8, B = 34;
  const eqH = (h - T - B) * 0.68, ddTop = T + eqH + 14, ddH = h - B - ddTop;
  const {xs, breaks, span} = tradingAxis(pts);
  const X = x => L + (span > 0 ? x / span : 0.5) * (w - L - R);
  let lo = Infinity, hi = -Infinity, ddMax = 0;
  for (const p of pts) { lo = Math.min(lo, p[3]); hi = Math.max(hi, p[4]); ddMax = Math.max(ddMax, p[5]); }
  if (hi - lo < 1) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  const Y = v => T + (hi - v) / (hi - lo) * eqH;
  const D = d => ddTop + (ddMax > 0 ? d / ddMax : 0) * ddH;

  // grid + y labels (equity)
  g.strokeStyle = "#eaeef2"; g.lineWidth = 1; g.textAlign = "right"; g.textBaseline = "middle";
  for (const v of niceTicks(lo, hi, 4)) {
    g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(w - R, Y(v)); g.stroke();
    g.fillText(inr(v, 0), L - 6, Y(v));
  }
  g.fillText("0", L - 6, ddTop);
  if (ddMax > 0) g.fillText("-" + inr(ddMax, 0), L - 6, ddTop + ddH);
  // axis titles
  g.save(); g.translate(12, T + eqH / 2); g.rotate(-Math.PI / 2); g.textAlign = "center";
  g.fillText("equity (₹)", 0, 0); g.restore();
  g.save(); g.translate(12, ddTop + ddH / 2); g.rotate(-Math.PI / 2); g.textAlign = "center";
  g.fillText("drawdown (₹)", 0, 0); g.restore();
  g.textAlign = "center"; g.textBaseline = "top";
  g.fillText("market time (IST), trading time only", L + (w - L - R) / 2, h - 13);

  // x ticks: ~6 labelled bucket ends, plus a dashed line and the date at each pause
  const every = Math.max(1, Math.ceil(pts.length / 6));
  g.strokeStyle = "#d0d7de";
  for (let i = 0; i < pts.length; i += every) {
    const x = X(xs[i]);
    g.beginPath(); g.moveTo(x, T + eqH); g.lineTo(x, T + eqH + 4); g.stroke();
    g.fillText(istParts(pts[i][1]).hm, x, h - B + 4);
  }
  g.setLineDash([4, 3]);
  for (const b of breaks) {
    const x = X(b.x);
    g.beginPath(); g.moveTo(x, T); g.lineTo(x, ddTop + ddH); g.stroke();
    g.fillText(istParts(b.t).date, x, T + eqH + 2);
  }
  g.setLineDash([]);

  // low-high band, then the equity line
  g.fillStyle = "rgba(31,111,235,0.15)";
  g.beginPath();
  pts.forEach((p, i) => { const x = X(xs[i]); i ? g.lineTo(x, Y(p[4])) : g.moveTo(x, Y(p[4])); });
  for (let i = pts.length - 1; i >= 0; i--) g.lineTo(X(xs[i]), Y(pts[i][3]));
  g.closePath(); g.fill();
  g.strokeStyle = "#1f6feb"; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((p, i) => { const x = X(xs[i]); i ? g.lineTo(x, Y(p[2])) : g.moveTo(x, Y(p[2])); });
  g.stroke();

  // drawdown area
  g.fillStyle = "rgba(207,34,46,0.35)"; g.beginPath(); g.moveTo(X(xs[0]), ddTop);
  pts.forEach((p, i) => g.lineTo(X(xs[i]), D(p[5])));
  g.lineTo(X(xs[xs.length - 1]), ddTop); g.closePath(); g.fill();
  g.strokeStyle = "#8c959f"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, ddTop + ddH); g.lineTo(w - R, ddTop + ddH); g.stroke();
  g.beginPath(); g.moveTo(L, ddTop); g.lineTo(w - R, ddTop); g.stroke();
}

// ------------------------------------------------------------------ wiring

async function setupHalt() {
  try {
    const r = await fetch("/api/session", {credentials: "same-origin"});
    if (!r.ok) return;
    const s = await r.json();
    if (!s.halt) return;
    const b = $("halt");
    b.hidden = false;
    b.addEventListener("click", async () => {
      if (!window.confirm("Halt trading? New orders will be rejected for the rest of this session."))
        return;
      const res = await fetch("/api/halt", {method: "POST", credentials: "same-origin",
                                            headers: {"X-CSRF-Token": s.csrf}});
      b.textContent = res.ok ? "halt sent" : "halt failed (" + res.status + ")";
      b.disabled = res.ok;
    });
  } catch (e) { /* the stream's status shows the connection */ }
}

function connect() {
  const es = new EventSource("/api/stream");
  es.onopen = () => setText("conn", "live", "live");
  es.onmessage = m => render(JSON.parse(m.data));
  es.onerror = () => setText("conn", "reconnecting", "down");
}

window.addEventListener("resize", drawChart);
document.addEventListener("DOMContentLoaded", async () => {
  try {
    const r = await fetch("/api/view", {credentials: "same-origin"});
    if (r.ok) render(await r.json());
  } catch (e) { /* the stream will follow */ }
  fetchEquity();
  setupHalt();
  connect();
});
