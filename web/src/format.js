// Number, size and time formatting shared by the views.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  const digits = u === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${n < 0 ? '-' : ''}${v.toFixed(digits)} ${UNITS[u]}`;
}

export const fmtRate = (n) => `${fmtBytes(n)}/s`;

// Short axis labels: "0", "512 B", "1.5 KiB".
export function fmtRateAxis(n) {
  if (!n) return '0';
  return fmtBytes(n).replace(/\.0+ /, ' ').replace(/(\.\d)0 /, '$1 ');
}

const intFmt = new Intl.NumberFormat();
export const fmtInt = (n) => (Number.isFinite(n) ? intFmt.format(n) : '–');

export function fmtDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  s = Math.floor(s);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const p2 = (x) => String(x).padStart(2, '0');
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${p2(m)} m`;
  if (m) return `${m} m ${p2(sec)} s`;
  return `${sec} s`;
}

export function fmtClock(epochS) {
  const d = new Date(epochS * 1000);
  const p2 = (x) => String(x).padStart(2, '0');
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

const SPEEDS = { low: '1.5 Mb/s', full: '12 Mb/s', high: '480 Mb/s', super: '5 Gb/s', 'super-plus': '10 Gb/s', super_plus: '10 Gb/s' };
export const fmtSpeed = (s) => (SPEEDS[s] ? `${s} speed · ${SPEEDS[s]}` : s && s !== 'unknown' ? `${s} speed` : 'speed unknown');

const CLASSES = {
  '01': 'audio', '02': 'CDC', '03': 'HID', '05': 'physical', '06': 'image', '07': 'printer',
  '08': 'mass storage', '09': 'hub', '0a': 'CDC data', '0b': 'smart card', '0d': 'content security',
  '0e': 'video', '0f': 'healthcare', '10': 'audio/video', '11': 'billboard', 'dc': 'diagnostic',
  'e0': 'wireless', 'ef': 'misc', 'fe': 'app-specific', 'ff': 'vendor',
};
export const className = (c) => CLASSES[String(c || '').toLowerCase()] || '';

// "ff vendor", or for class 00 the interfaces' classes: "per interface: ff vendor, 03 HID".
export function fmtClass(dev) {
  const one = (c) => { const n = className(c); return n ? `${c} ${n}` : String(c); };
  if (dev.class && dev.class !== '00') return `class ${one(dev.class)}`;
  const ifs = Array.isArray(dev.interfaces) ? dev.interfaces : [];
  const seen = [...new Set(ifs.map((i) => String(i.class || '').toLowerCase()).filter(Boolean))];
  return seen.length ? `interfaces: ${seen.map(one).join(', ')}` : 'class 00';
}
