// Bandwidth history: the last 300 one-second samples per device, in and out, drawn with uPlot.
import uPlot from 'uplot';
import { fmtRateAxis, fmtRate, fmtClock } from './format.js';

const WINDOW = 300;
// Y-axis steps in powers of two so labels read "256 KiB", "1 MiB", not "1.91 MiB".
const INCRS = [];
for (let k = 0; k < 4; k++) for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) INCRS.push(m * 1024 ** k);
const PALETTE = ['#2f6fdf', '#e8590c', '#2b8a3e', '#ae3ec9', '#0c8599', '#d6336c', '#5f3dc4', '#a61e4d'];

// "17:05" on whole minutes, "17:05:30" otherwise: the window is five minutes.
function fmtTick(v) {
  const s = fmtClock(v);
  return s.endsWith(':00') ? s.slice(0, 5) : s;
}

export class BandwidthChart {
  constructor(el, onCursor) {
    this.el = el;
    this.onCursor = onCursor;
    this.x = [];              // sample times, epoch seconds, ascending, one per second
    this.dev = new Map();     // busid -> {in: [], out: []}, aligned with this.x
    this.colors = new Map();  // busid -> color, stable for the page's life
    this.serial = null;       // the server's "t" of the newest pushed sample
    this.lastAt = 0;          // when (epoch s) the newest sample arrived
    this.plot = null;
    this.keys = '';
    this.width = 0;
    // Deferred: building or resizing the plot changes the observed box within the callback.
    this.ro = new ResizeObserver(() => requestAnimationFrame(() => this.resize()));
    this.ro.observe(el);
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    const rebuild = () => { this.destroy(); this.render(); };
    if (mq.addEventListener) mq.addEventListener('change', rebuild);
  }

  colorOf(busid) {
    if (!this.colors.has(busid)) this.colors.set(busid, PALETTE[this.colors.size % PALETTE.length]);
    return this.colors.get(busid);
  }

  clear() {
    this.x = [];
    this.dev.clear();
    this.serial = null;
    this.render();
  }

  // GET /api/bandwidth: {busid: {in: [...], out: [...]}}, oldest first; the newest sample
  // is taken as the second that just ended (the reply carries no time).
  seed(devices, nowS) {
    const entries = Object.entries(devices || {});
    const n = Math.min(WINDOW, Math.max(0, ...entries.map(([, v]) => Math.max((v.in || []).length, (v.out || []).length))));
    const lastX = Math.round(nowS);
    this.x = [];
    for (let i = n - 1; i >= 0; i--) this.x.push(lastX - i);
    this.dev.clear();
    for (const [busid, v] of entries) {
      const pad = (a) => { a = (a || []).slice(-n); return [...new Array(n - a.length).fill(null), ...a]; };
      this.dev.set(busid, { in: pad(v.in), out: pad(v.out) });
      this.colorOf(busid);
    }
    this.serial = null;
    this.lastAt = nowS;
    this.render();
  }

  // One WebSocket sample {busid: [in, out]} numbered t by the server. Only differences of
  // t are used (t - previous t = seconds between the samples); the same t again replaces
  // the sample. Without a previous t (first frame, after a seed, after a server restart)
  // the arrival time places it.
  push(t, devices, nowS) {
    if (!Number.isFinite(t)) return;
    let step;
    if (this.serial !== null && t >= this.serial && t - this.serial <= WINDOW) step = t - this.serial;
    else step = Math.max(0, Math.round(nowS - this.lastAt));
    if (!this.x.length) {
      this.x.push(Math.round(nowS));
      for (const s of this.dev.values()) { s.in.push(null); s.out.push(null); }
    } else if (step > WINDOW) {
      this.x = [Math.round(nowS)];
      this.dev.clear();
    } else {
      const lastX = this.x[this.x.length - 1];
      for (let i = 1; i <= step; i++) {
        this.x.push(lastX + i);
        for (const s of this.dev.values()) { s.in.push(null); s.out.push(null); }
      }
    }
    const idx = this.x.length - 1;
    for (const [busid, pair] of Object.entries(devices || {})) {
      if (!this.dev.has(busid)) {
        this.dev.set(busid, { in: this.x.map(() => null), out: this.x.map(() => null) });
        this.colorOf(busid);
      }
      const s = this.dev.get(busid);
      s.in[idx] = Array.isArray(pair) ? pair[0] : null;
      s.out[idx] = Array.isArray(pair) ? pair[1] : null;
    }
    this.serial = t;
    this.lastAt = nowS;
    this.trim();
    this.render();
  }

  trim() {
    const drop = this.x.length - WINDOW;
    if (drop > 0) {
      this.x.splice(0, drop);
      for (const s of this.dev.values()) { s.in.splice(0, drop); s.out.splice(0, drop); }
    }
    for (const [busid, s] of this.dev) {
      if (s.in.every((v) => v === null) && s.out.every((v) => v === null)) this.dev.delete(busid);
    }
  }

  busids() { return [...this.dev.keys()].sort(); }

  // Latest sample (or the one at index idx) per device: {when, rates: {busid: [in, out]}}.
  sample(idx = null) {
    if (!this.x.length) return { when: null, rates: {} };
    const i = idx === null || idx === undefined ? this.x.length - 1 : idx;
    const rates = {};
    for (const [busid, s] of this.dev) rates[busid] = [s.in[i], s.out[i]];
    return { when: this.x[i], rates };
  }

  data() {
    const ids = this.busids();
    const d = [this.x.slice()];
    for (const id of ids) { d.push(this.dev.get(id).in); d.push(this.dev.get(id).out); }
    return d;
  }

  size() {
    const w = Math.max(200, Math.floor(this.el.clientWidth));
    return { width: w, height: Math.round(Math.min(260, Math.max(170, w * 0.42))) };
  }

  render() {
    const keys = this.busids().join(' ');
    if (this.plot && keys !== this.keys) this.destroy();
    if (!this.plot) {
      if (!this.el.clientWidth) return; // not laid out yet; resize() builds it
      this.keys = keys;
      this.plot = new uPlot(this.options(this.busids()), this.data(), this.el);
      this.width = this.el.clientWidth;
      return;
    }
    this.plot.setData(this.data());
  }

  resize() {
    const w = this.el.clientWidth;
    if (!w || w === this.width) return;
    if (!this.plot) { this.render(); return; }
    this.width = w;
    this.plot.setSize(this.size());
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.keys = '';
  }

  options(ids) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#666';
    const grid = css.getPropertyValue('--grid').trim() || '#ddd';
    const font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    const axis = { stroke: fg, font, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1, size: 4 } };
    const series = [{ value: (u, v) => (v == null ? '–' : fmtClock(v)) }];
    for (const id of ids) {
      const c = this.colorOf(id);
      series.push({ label: `${id} in`, stroke: c, width: 1.5, fill: `${c}1f`, points: { show: false }, value: (u, v) => fmtRate(v) });
      series.push({ label: `${id} out`, stroke: c, width: 1.25, dash: [5, 4], points: { show: false }, value: (u, v) => fmtRate(v) });
    }
    return {
      ...this.size(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: (u, min, max) => (max == null ? [Date.now() / 1000 - WINDOW, Date.now() / 1000] : [max - WINDOW + 1, max]) },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1024] },
      },
      axes: [
        { ...axis, space: 70, size: 28, values: (u, splits) => splits.map(fmtTick) },
        { ...axis, size: 62, incrs: INCRS, values: (u, splits) => splits.map(fmtRateAxis) },
      ],
      series,
      hooks: { setCursor: [(u) => this.onCursor && this.onCursor(u.cursor.idx)] },
    };
  }
}
