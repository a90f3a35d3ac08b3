#!/usr/bin/env node
// Mock of the dashboard API (docs/api.md) for developing and screenshotting the page
// without the C server. Node's standard library only.
//
//   node web/dev-server.mjs [--port 8080] [--host 127.0.0.1] [--platform esp32p4|posix]
//                           [--password PASS] [--quiet]
//
// Serves web/dist/index.html(.gz) at / (run `npm run build` first), the JSON API with
// sessions, CSRF and login back-off, and a server-to-client WebSocket at /ws. Two devices
// (1-1.1 and 1-1.3) sit behind hub 1-1; one client imports 1-1.3 and its bandwidth grows.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(HERE, 'dist');

// ---------------------------------------------------------------- arguments
function usage() {
  return 'usage: node dev-server.mjs [--port N] [--host ADDR] [--platform esp32p4|posix] [--password PASS] [--quiet]';
}
function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1', platform: 'esp32p4', password: null, quiet: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) { console.error(`${a} needs a value\n${usage()}`); process.exit(2); }
      return argv[++i];
    };
    if (a === '--port') o.port = Number(val());
    else if (a === '--host') o.host = val();
    else if (a === '--platform') o.platform = val();
    else if (a === '--password') o.password = val();
    else if (a === '--quiet') o.quiet = true;
    else if (a === '-h' || a === '--help') { console.log(usage()); process.exit(0); }
    else { console.error(`unknown argument: ${a}\n${usage()}`); process.exit(2); }
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) { console.error('bad --port'); process.exit(2); }
  if (!['esp32p4', 'posix'].includes(o.platform)) { console.error('--platform is esp32p4 or posix'); process.exit(2); }
  return o;
}
const opt = parseArgs(process.argv);
const FIRMWARE = opt.platform === 'esp32p4';

// ---------------------------------------------------------------- helpers
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const now = () => Date.now() / 1000;

function hashPassword(pw) {
  const iters = 10000;
  const salt = crypto.randomBytes(16);
  const hash = crypto.pbkdf2Sync(pw, salt, iters, 32, 'sha256');
  return `pbkdf2-sha256$${iters}$${salt.toString('hex')}$${hash.toString('hex')}`;
}
function checkPassword(pw, stored) {
  const [, iters, saltHex, hashHex] = stored.split('$');
  const got = crypto.pbkdf2Sync(pw, Buffer.from(saltHex, 'hex'), Number(iters), 32, 'sha256');
  return crypto.timingSafeEqual(got, Buffer.from(hashHex, 'hex'));
}

function parseIPv4(s) {
  if (typeof s !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return null;
  const p = s.split('.').map(Number);
  if (p.some((x) => x > 255)) return null;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
function isIPv6(s) {
  if (typeof s !== 'string' || !s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  const dbl = s.split('::').length - 1;
  if (dbl > 1) return false;
  const groups = s.split(':').filter((g) => g !== '');
  return groups.length <= 8 && groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g) || parseIPv4(g) !== null)
    && (dbl === 1 || groups.length === 8);
}
// An allowlist entry: an IPv4/IPv6 address, optionally /prefix.
function parseAllowEntry(s) {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(s);
  if (!m) return null;
  const v4 = parseIPv4(m[1]);
  if (v4 !== null) {
    const bits = m[2] === undefined ? 32 : Number(m[2]);
    if (bits > 32) return null;
    return { v4, bits };
  }
  if (isIPv6(m[1])) {
    const bits = m[2] === undefined ? 128 : Number(m[2]);
    if (bits > 128) return null;
    return { v6: m[1].toLowerCase(), bits };
  }
  return null;
}
function allowed(address, access) {
  if (access.mode === 'open') return true;
  const a = parseIPv4(address);
  return access.allow.some((entry) => {
    const e = parseAllowEntry(entry);
    if (!e) return false;
    if (e.v4 !== undefined && a !== null) {
      const mask = e.bits === 0 ? 0 : (0xffffffff << (32 - e.bits)) >>> 0;
      return ((a & mask) >>> 0) === ((e.v4 & mask) >>> 0);
    }
    return e.v6 !== undefined && e.v6 === String(address).toLowerCase();
  });
}

class HttpError extends Error {
  constructor(status, error, field, extra) {
    super(error);
    this.status = status;
    this.body = { error, ...(field ? { field } : {}), ...(extra || {}) };
  }
}

// ---------------------------------------------------------------- simulated server state
let bootAt;          // wall-clock seconds at "boot"
let adminPw;         // stored hash or null
let settings;
let devices;
let clients;
let events;
let nextEventId;
let nextClientId;
let bw;              // {t: [uptime seconds], dev: {busid: {in: [], out: []}}}
let sessions;        // token -> {csrf, last, created}
let loginFails;
let loginLockUntil;
let version = 0;     // bumped on every change; WebSocket frames are sent when it moved
let sampleSerial = 0; // numbers the bandwidth samples, like the C server's "t"
let reconnectAt = null;

const uptime = () => now() - bootAt;

function defaultSettings() {
  return {
    hostname: FIRMWARE ? 'usbip-esp32p4' : 'lab-pc',
    network: { mode: 'dhcp', address: '', netmask: '', gateway: '', dns: '' },
    access: { mode: 'open', allow: ['192.168.1.0/24', '::1'] },
    syslog: { target: 'logs.lan:514' },
  };
}

function makeDevices() {
  const stats = () => ({ urbs: 0, bytes_in: 0, bytes_out: 0, errors: 0 });
  return [
    {
      busid: '1-1.1', path: [1, 1], vid: '0403', pid: '6001', manufacturer: 'FTDI', product: 'FT232R USB UART',
      speed: 'full', class: '00', interfaces: [{ class: 'ff', subclass: 'ff', protocol: 'ff' }],
      state: 'available', exported: true, client: null, stats: stats(),
    },
    {
      busid: '1-1.3', path: [1, 3], vid: '0525', pid: 'a4a0', manufacturer: 'Linux Foundation', product: 'Gadget Zero',
      speed: 'high', class: '00', interfaces: [{ class: 'ff', subclass: '00', protocol: '00' }],
      state: 'available', exported: true, client: null, stats: stats(),
    },
  ];
}

function addEvent(type, message, busid = null, peer = null, at = uptime()) {
  const e = { id: nextEventId++, time_s: Math.round(at * 10) / 10, type, busid, peer, message };
  events.push(e);
  if (events.length > 256) events.splice(0, events.length - 256);
  version++;
  return e;
}

function connectClient(address, busid, at) {
  const dev = devices.find((d) => d.busid === busid);
  const c = {
    id: nextClientId++, address, busid: null, connectedAt: now() - (uptime() - at),
    importedAt: null, urbs: 0, bytes_in: 0, bytes_out: 0, errors: 0,
  };
  clients.push(c);
  addEvent('client_connect', `client connected from ${address}`, null, address, at);
  if (!dev || !dev.exported || dev.state !== 'available') {
    addEvent('client_refused', `import of ${busid} refused: ${!dev ? 'no such device' : !dev.exported ? 'not exported' : 'busy'}`, busid, address, at);
    dropClient(c, 'closed after a refused import', at);
    return null;
  }
  c.busid = busid;
  c.importedAt = c.connectedAt;
  dev.state = 'in_use';
  dev.client = { id: c.id, address };
  addEvent('import', `imported ${dev.vid}:${dev.pid}`, busid, address, at);
  return c;
}

function dropClient(c, why, at = uptime()) {
  clients = clients.filter((x) => x !== c);
  if (c.busid) {
    const dev = devices.find((d) => d.busid === c.busid);
    if (dev && dev.client && dev.client.id === c.id) {
      dev.state = 'available';
      dev.client = null;
      addEvent('release', `released ${dev.vid}:${dev.pid}`, dev.busid, c.address, at);
    }
  }
  addEvent('client_disconnect', `client ${c.address} disconnected: ${why}`, null, c.address, at);
  version++;
}

// Rate of the simulated transfer: grows with the import's age, wobbles, some noise.
function simRate(c, t) {
  const age = Math.max(0, t - (c.importedAt - bootAt));
  const base = Math.min(60_000 + age * 1_500, 3_000_000);
  const wobble = 1 + 0.35 * Math.sin(t / 9) + 0.15 * Math.sin(t / 2.3);
  const noise = 0.9 + 0.2 * Math.random();
  const rin = Math.round(base * wobble * noise);
  const rout = Math.round(rin * 0.07 + 2_000 * Math.random());
  return [rin, rout];
}

function sampleSecond(t) {
  // One bandwidth sample per device for the second ending at uptime t.
  bw.t.push(t);
  sampleSerial++;
  for (const d of devices) {
    if (!bw.dev[d.busid]) bw.dev[d.busid] = { in: bw.t.slice(0, -1).map(() => 0), out: bw.t.slice(0, -1).map(() => 0) };
    let rin = 0, rout = 0;
    const c = d.client && clients.find((x) => x.id === d.client.id);
    if (c) {
      [rin, rout] = simRate(c, t);
      const urbs = Math.ceil((rin + rout) / 16384);
      c.bytes_in += rin; c.bytes_out += rout; c.urbs += urbs;
      d.stats.bytes_in += rin; d.stats.bytes_out += rout; d.stats.urbs += urbs;
    } else if (d.busid === '1-1.1' && Math.random() < 0.05) {
      d.stats.urbs += 1; // an occasional control transfer from the hub driver
    }
    bw.dev[d.busid].in.push(rin);
    bw.dev[d.busid].out.push(rout);
  }
  for (const k of Object.keys(bw.dev)) {
    if (!devices.some((d) => d.busid === k)) delete bw.dev[k];
  }
  while (bw.t.length > 300) {
    bw.t.shift();
    for (const k of Object.keys(bw.dev)) { bw.dev[k].in.shift(); bw.dev[k].out.shift(); }
  }
}

const PEERS = ['192.168.1.20', '192.168.1.33', '192.168.1.41', 'fe80::1c2b:3aff:fe10:77'];
function randomEvent(t) {
  const roll = Math.random();
  const peer = PEERS[1 + Math.floor(Math.random() * (PEERS.length - 1))];
  const inUse = devices.find((d) => d.state === 'in_use');
  if (roll < 0.45) {
    addEvent('info', `device list sent to ${peer} (${devices.filter((d) => d.exported).length} devices)`, null, peer, t);
  } else if (roll < 0.65 && inUse) {
    inUse.stats.errors++;
    const c = clients.find((x) => x.id === inUse.client.id);
    if (c) c.errors++;
    addEvent('error', 'URB on endpoint 0x81 failed: stall (-EPIPE)', inUse.busid, inUse.client.address, t);
  } else if (roll < 0.8 && inUse) {
    addEvent('info', 'URB unlinked by the client', inUse.busid, inUse.client.address, t);
  } else if (roll < 0.9) {
    addEvent('client_refused', `connection from 10.9.8.7 refused by the allowlist`, null, '10.9.8.7', t);
  } else {
    addEvent('info', `syslog target ${settings.syslog.target || '(none)'} reachable`, null, null, t);
  }
}

function boot({ factory = false, startUptime = 3725 } = {}) {
  bootAt = now() - startUptime;
  if (factory || adminPw === undefined) adminPw = opt.password ? hashPassword(opt.password) : null;
  if (factory) adminPw = null;
  if (factory || !settings) settings = defaultSettings();
  devices = makeDevices();
  clients = [];
  events = [];
  nextEventId = 1;
  nextClientId = 1;
  sessions = new Map();
  loginFails = 0;
  loginLockUntil = 0;
  bw = { t: [], dev: {} };
  sampleSerial = 0;
  reconnectAt = null;

  // History: boot, devices attached, some traffic, one client importing 1-1.3 for a while.
  const up = uptime();
  addEvent('info', `usbip-server 0.4.0 started (${opt.platform})`, null, null, 0.4);
  if (FIRMWARE) addEvent('info', 'link up, 100 Mb/s full duplex, DHCP 192.168.1.57', null, null, 2.1);
  addEvent('device_added', 'hub 05e3:0610 at 1-1 (4 ports), not exportable', '1-1', null, 3.0);
  addEvent('device_added', 'device 0403:6001 FTDI FT232R USB UART', '1-1.1', null, 3.4);
  addEvent('device_added', 'device 0525:a4a0 Linux Foundation Gadget Zero', '1-1.3', null, 3.6);
  nextClientId = 3;
  const start = Math.max(5, up - 900);
  for (let t = Math.floor(start - 30); t < start; t += 11) randomEvent(Math.max(4, t));
  connectClient('192.168.1.20', '1-1.3', start);
  for (let t = Math.floor(up) - 299; t <= Math.floor(up); t++) {
    sampleSecond(t);
    if (t % 13 === 0) randomEvent(t + 0.3);
  }
  for (const d of devices) { // account for the import's traffic before the 5 minutes kept
    const c = d.client && clients.find((x) => x.id === d.client.id);
    if (!c) continue;
    const extra = Math.round((up - 300 - start) * 110_000);
    if (extra > 0) {
      c.bytes_in += extra; d.stats.bytes_in += extra;
      c.bytes_out += Math.round(extra * 0.07); d.stats.bytes_out += Math.round(extra * 0.07);
      c.urbs += Math.round(extra / 16384); d.stats.urbs += Math.round(extra / 16384);
    }
  }
  version++;
}
boot();

// One simulated second.
let lastSampled = Math.floor(uptime());
setInterval(() => {
  const t = Math.floor(uptime());
  while (lastSampled < t) {
    lastSampled++;
    sampleSecond(lastSampled);
    if (lastSampled % 7 === 0) randomEvent(lastSampled + Math.random() * 0.9);
    version++;
  }
  if (reconnectAt !== null && now() >= reconnectAt) {
    reconnectAt = null;
    const c = connectClient('192.168.1.20', '1-1.3', uptime());
    if (!c) reconnectAt = now() + 20;
  }
}, 250).unref();

// ---------------------------------------------------------------- views
function statusView() {
  const up = uptime();
  const s = {
    version: '0.4.0', platform: opt.platform, hostname: settings.hostname,
    uptime_s: Math.floor(up),
    memory: FIRMWARE
      ? { heap_free: 182_000 + Math.round(6_000 * Math.sin(up / 5)), heap_min_free: 151_312, psram_free: 31_457_280 - 524_288 * clients.length }
      : { rss_bytes: 5_242_880 + 4096 * (Math.floor(up) % 32) },
    usbip_port: 3240, devices: devices.length, clients: clients.length,
    password_set: adminPw !== null,
  };
  if (FIRMWARE) {
    const ip = settings.network.mode === 'static' && settings.network.address ? settings.network.address : '192.168.1.57';
    s.link = { up: true, speed_mbps: 100, ipv4: ip };
  }
  return s;
}
const devicesView = () => devices.map((d) => ({ ...d, client: d.client ? { ...d.client } : null, stats: { ...d.stats } }));
const clientsView = () => clients.map((c) => ({
  id: c.id, address: c.address, busid: c.busid, connected_s: Math.floor(now() - c.connectedAt),
  urbs: c.urbs, bytes_in: c.bytes_in, bytes_out: c.bytes_out, errors: c.errors,
}));
function bandwidthView() {
  const out = {};
  for (const [k, v] of Object.entries(bw.dev)) out[k] = { in: v.in.slice(), out: v.out.slice() };
  return { interval_s: 1, devices: out };
}
function metricsView() {
  const s = statusView();
  const L = ['# HELP usbip_up 1 while the server runs.', '# TYPE usbip_up gauge', 'usbip_up 1',
    '# TYPE usbip_uptime_seconds gauge', `usbip_uptime_seconds ${s.uptime_s}`,
    '# TYPE usbip_devices gauge', `usbip_devices ${devices.length}`,
    '# TYPE usbip_clients gauge', `usbip_clients ${clients.length}`];
  for (const kind of ['urbs', 'bytes_in', 'bytes_out', 'errors']) {
    L.push(`# TYPE usbip_device_${kind}_total counter`);
    for (const d of devices) L.push(`usbip_device_${kind}_total{busid="${d.busid}"} ${d.stats[kind]}`);
    L.push(`# TYPE usbip_client_${kind}_total counter`);
    for (const c of clients) L.push(`usbip_client_${kind}_total{client="${c.id}",address="${c.address}"} ${c[kind]}`);
  }
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------- settings validation
function validateSettings(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'settings must be a JSON object');
  const next = structuredClone(settings);
  for (const key of Object.keys(body)) {
    if (!['hostname', 'network', 'access', 'syslog'].includes(key)) throw new HttpError(400, `unknown setting "${key}"`, key);
  }
  if ('hostname' in body) {
    const h = body.hostname;
    if (typeof h !== 'string' || !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(h)) {
      throw new HttpError(400, 'hostname: 1..63 letters, digits and inner hyphens', 'hostname');
    }
    next.hostname = h;
  }
  if ('network' in body) {
    const n = body.network;
    if (!n || typeof n !== 'object') throw new HttpError(400, 'network must be an object', 'network');
    for (const k of Object.keys(n)) {
      if (!['mode', 'address', 'netmask', 'gateway', 'dns'].includes(k)) throw new HttpError(400, `unknown setting "network.${k}"`, `network.${k}`);
      if (typeof n[k] !== 'string') throw new HttpError(400, `network.${k} must be a string`, `network.${k}`);
    }
    Object.assign(next.network, n);
    const nw = next.network;
    if (!['dhcp', 'static'].includes(nw.mode)) throw new HttpError(400, 'mode is "dhcp" or "static"', 'network.mode');
    for (const k of ['address', 'netmask', 'gateway', 'dns']) {
      if (nw.mode === 'static' && k !== 'dns' && nw[k] === '') throw new HttpError(400, `${k} is needed for a static address`, `network.${k}`);
      if (nw[k] !== '' && parseIPv4(nw[k]) === null) throw new HttpError(400, `not an IPv4 address: "${nw[k]}"`, `network.${k}`);
    }
    if (nw.netmask) {
      const m = parseIPv4(nw.netmask);
      if (((~m >>> 0) & ((~m >>> 0) + 1)) !== 0) throw new HttpError(400, `not a contiguous netmask: "${nw.netmask}"`, 'network.netmask');
    }
    if (nw.mode === 'static') {
      const a = parseIPv4(nw.address), m = parseIPv4(nw.netmask), g = parseIPv4(nw.gateway);
      if (((a & m) >>> 0) !== ((g & m) >>> 0)) throw new HttpError(400, `gateway ${nw.gateway} is outside ${nw.address}/${nw.netmask}`, 'network.gateway');
    }
  }
  if ('access' in body) {
    const a = body.access;
    if (!a || typeof a !== 'object') throw new HttpError(400, 'access must be an object', 'access');
    if ('mode' in a) {
      if (!['open', 'closed'].includes(a.mode)) throw new HttpError(400, 'mode is "open" or "closed"', 'access.mode');
      next.access.mode = a.mode;
    }
    if ('allow' in a) {
      if (!Array.isArray(a.allow)) throw new HttpError(400, 'allow must be a list', 'access.allow');
      if (a.allow.length > 32) throw new HttpError(400, 'at most 32 entries', 'access.allow');
      a.allow.forEach((e, i) => {
        if (typeof e !== 'string' || !parseAllowEntry(e)) throw new HttpError(400, `not an address or CIDR: "${e}"`, `access.allow[${i}]`);
      });
      next.access.allow = a.allow.slice();
    }
    if (next.access.mode === 'closed' && next.access.allow.length === 0) {
      throw new HttpError(400, 'a closed server needs at least one allowlist entry', 'access.allow');
    }
  }
  if ('syslog' in body) {
    const s = body.syslog;
    if (!s || typeof s !== 'object' || typeof s.target !== 'string') throw new HttpError(400, 'syslog.target must be a string', 'syslog.target');
    if (s.target !== '') {
      const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(s.target);
      if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
        throw new HttpError(400, `not HOST or HOST:PORT: "${s.target}"`, 'syslog.target');
      }
    }
    next.syslog.target = s.target;
  }
  return next;
}

// ---------------------------------------------------------------- sessions and auth
function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
function currentSession(req) {
  const tok = cookies(req).usbip_session;
  if (!tok || !sessions.has(tok)) return null;
  const s = sessions.get(tok);
  if (now() - s.last > 12 * 3600) { sessions.delete(tok); return null; }
  s.last = now();
  return { token: tok, ...s, ref: s };
}
function requireAuth(req) {
  if (adminPw === null) throw new HttpError(403, 'no admin password is set yet', 'password');
  const s = currentSession(req);
  if (!s) throw new HttpError(401, 'not logged in or session expired');
  if (req.headers['x-csrf-token'] !== s.csrf) throw new HttpError(403, 'missing or wrong CSRF token', 'X-CSRF-Token');
  return s;
}
function newSession() {
  while (sessions.size >= 8) {
    let oldest = null;
    for (const [k, v] of sessions) if (!oldest || v.created < sessions.get(oldest).created) oldest = k;
    sessions.delete(oldest);
  }
  const token = crypto.randomBytes(24).toString('hex');
  const csrf = crypto.randomBytes(16).toString('hex');
  sessions.set(token, { csrf, last: now(), created: now() });
  return { token, csrf };
}

// ---------------------------------------------------------------- routes
const routes = [];
const route = (method, re, fn) => routes.push({ method, re, fn });

route('GET', /^\/api\/status$/, () => statusView());
route('GET', /^\/api\/devices$/, () => ({ devices: devicesView() }));
route('GET', /^\/api\/clients$/, () => ({ clients: clientsView() }));
route('GET', /^\/api\/events$/, ({ url }) => {
  const since = Number(url.searchParams.get('since') || 0);
  if (!Number.isFinite(since) || since < 0) throw new HttpError(400, 'since must be a number', 'since');
  const list = events.filter((e) => e.id > since).slice(0, 100);
  return { events: list, next: list.length ? list[list.length - 1].id : Math.min(since, nextEventId - 1) };
});
route('GET', /^\/api\/bandwidth$/, () => bandwidthView());
route('GET', /^\/api\/settings$/, () => settings);
route('GET', /^\/api\/session$/, ({ req }) => {
  const s = adminPw === null ? null : currentSession(req);
  return { password_set: adminPw !== null, logged_in: !!s, ...(s ? { csrf: s.csrf } : {}) };
});
route('GET', /^\/metrics$/, () => ({ text: metricsView() }));

route('POST', /^\/api\/login$/, ({ body, res, req }) => {
  if (adminPw === null) throw new HttpError(403, 'no admin password is set yet', 'password');
  const wait = loginLockUntil - now();
  if (wait > 0) throw new HttpError(429, 'too many failed logins', null, { retry_after_s: Math.ceil(wait) });
  if (!body || typeof body.password !== 'string') throw new HttpError(400, 'password missing', 'password');
  if (!checkPassword(body.password, adminPw)) {
    loginFails++;
    loginLockUntil = now() + Math.min(60, 2 ** (loginFails - 1));
    addEvent('error', 'dashboard login failed', null, req.socket.remoteAddress);
    throw new HttpError(401, 'wrong password', 'password');
  }
  loginFails = 0;
  loginLockUntil = 0;
  const s = newSession();
  res.setHeader('Set-Cookie', `usbip_session=${s.token}; Path=/; HttpOnly; SameSite=Strict`);
  addEvent('info', 'dashboard login', null, req.socket.remoteAddress);
  return { csrf: s.csrf };
});
route('POST', /^\/api\/logout$/, ({ req, res }) => {
  const s = requireAuth(req);
  sessions.delete(s.token);
  res.setHeader('Set-Cookie', 'usbip_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
  return { ok: true };
});
route('POST', /^\/api\/password$/, ({ req, body }) => {
  let keep = null;
  if (adminPw !== null) {
    keep = requireAuth(req);
    if (!body || typeof body.current !== 'string' || !checkPassword(body.current, adminPw)) {
      throw new HttpError(403, 'the current password is wrong', 'current');
    }
  }
  if (!body || typeof body.new !== 'string') throw new HttpError(400, 'new password missing', 'new');
  const n = [...body.new].length;
  if (n < 8 || n > 64) throw new HttpError(400, 'the password needs 8 to 64 characters', 'new');
  adminPw = hashPassword(body.new);
  for (const k of [...sessions.keys()]) if (!keep || k !== keep.token) sessions.delete(k);
  addEvent('settings', keep ? 'admin password changed' : 'admin password set', null, req.socket.remoteAddress);
  return { ok: true };
});
route('PUT', /^\/api\/settings$/, ({ req, body }) => {
  requireAuth(req);
  const next = validateSettings(body);
  const changed = Object.keys(next).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(settings[k]));
  settings = next;
  if (changed.length) addEvent('settings', `settings changed: ${changed.join(', ')}`, null, req.socket.remoteAddress);
  if (changed.includes('access')) {
    for (const c of [...clients]) if (!allowed(c.address, settings.access)) dropClient(c, 'no longer allowed by the access control');
  }
  const reboot = FIRMWARE && changed.some((k) => k !== 'access');
  version++;
  return { ok: true, ...(reboot ? { reboot_needed: true } : {}) };
});
route('POST', /^\/api\/clients\/(\d+)\/disconnect$/, ({ req, m }) => {
  requireAuth(req);
  const c = clients.find((x) => x.id === Number(m[1]));
  if (!c) throw new HttpError(404, `no client ${m[1]}`, 'id');
  dropClient(c, 'disconnected from the dashboard');
  reconnectAt = now() + 20; // the simulated lab PC attaches again after a while
  return { ok: true };
});
route('POST', /^\/api\/devices\/([^/]+)\/export$/, ({ req, body, m }) => {
  requireAuth(req);
  const busid = decodeURIComponent(m[1]);
  const d = devices.find((x) => x.busid === busid);
  if (!d) throw new HttpError(404, `no device ${busid}`, 'busid');
  if (!body || typeof body.exported !== 'boolean') throw new HttpError(400, 'exported must be true or false', 'exported');
  if (d.exported !== body.exported) {
    d.exported = body.exported;
    addEvent('settings', d.exported ? `${busid} exported again` : `${busid} hidden from DEVLIST`, busid, req.socket.remoteAddress);
  }
  return { ok: true };
});
route('POST', /^\/api\/devices\/([^/]+)\/reset$/, ({ req, m }) => {
  requireAuth(req);
  const busid = decodeURIComponent(m[1]);
  const d = devices.find((x) => x.busid === busid);
  if (!d) throw new HttpError(404, `no device ${busid}`, 'busid');
  addEvent('info', FIRMWARE ? `port of ${busid} power-cycled` : `${busid} reset`, busid, req.socket.remoteAddress);
  return { ok: true };
});
route('POST', /^\/api\/system\/reboot$/, ({ req }) => {
  requireAuth(req);
  if (!FIRMWARE) throw new HttpError(501, 'the daemon cannot reboot its host');
  setTimeout(() => restart(false), 300);
  return { ok: true };
});
route('POST', /^\/api\/system\/factory-reset$/, ({ req }) => {
  requireAuth(req);
  if (!FIRMWARE) throw new HttpError(501, 'the daemon has no factory reset');
  setTimeout(() => restart(true), 300);
  return { ok: true };
});

// A simulated restart: every socket drops, state starts again at uptime ~0.
function restart(factory) {
  log(`-- simulated ${factory ? 'factory reset' : 'reboot'}`);
  for (const ws of wsClients) ws.socket.destroy();
  wsClients.clear();
  down = true;
  setTimeout(() => {
    boot({ factory, startUptime: 6 });
    lastSampled = Math.floor(uptime());
    down = false;
  }, 3000);
}
let down = false;

// ---------------------------------------------------------------- HTTP plumbing
function log(...a) { if (!opt.quiet) console.log(...a); }

function sendJson(res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
  res.end(body);
}

function servePage(req, res) {
  const gz = path.join(DIST, 'index.html.gz');
  const raw = path.join(DIST, 'index.html');
  const acceptsGzip = /\bgzip\b/.test(req.headers['accept-encoding'] || '');
  const headers = {
    'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY',
    // The same policy as the C server's, so that a page breaking it fails here too.
    'Content-Security-Policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; "
      + "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  };
  try {
    if (acceptsGzip && fs.existsSync(gz)) {
      const body = fs.readFileSync(gz);
      res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': body.length, Vary: 'Accept-Encoding' });
      return res.end(req.method === 'HEAD' ? undefined : body);
    }
    const body = fs.readFileSync(raw);
    res.writeHead(200, { ...headers, 'Content-Length': body.length });
    return res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(503, { 'Content-Type': 'text/plain' });
    return res.end('web/dist/index.html is missing: run `npm run build` in web/ (or tools/build-web.sh)\n');
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 4096) { reject(new HttpError(413, 'body over 4 KiB')); req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const done = (status) => log(`${req.method} ${url.pathname}${url.search} ${status}`);
  if (down) { req.socket.destroy(); return; }
  try {
    if (url.pathname === '/' || url.pathname === '/index.html') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
      servePage(req, res);
      return done(res.statusCode);
    }
    const matching = routes.filter((r) => r.re.test(url.pathname));
    if (!matching.length) throw new HttpError(404, `no such path: ${url.pathname}`);
    const r = matching.find((x) => x.method === req.method);
    if (!r) throw new HttpError(405, 'method not allowed');
    let body = null;
    if (req.method === 'POST' || req.method === 'PUT') {
      const text = await readBody(req);
      if (text.trim() !== '') {
        try { body = JSON.parse(text); } catch { throw new HttpError(400, 'body is not valid JSON'); }
      }
    }
    const out = r.fn({ req, res, url, body, m: r.re.exec(url.pathname) });
    if (out && typeof out.text === 'string' && url.pathname === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end(out.text);
    } else {
      sendJson(res, 200, out);
    }
    if (req.method !== 'GET') version++;
    done(200);
  } catch (e) {
    if (e instanceof HttpError) {
      sendJson(res, e.status, e.body);
      done(e.status);
    } else {
      console.error(e);
      sendJson(res, 500, { error: 'internal error in the mock' });
      done(500);
    }
  }
});

// ---------------------------------------------------------------- WebSocket (RFC 6455, server to client)
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const wsClients = new Set();

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

// Browsers send nothing but control frames (close, pong) to this read-only socket.
function wsOnData(ws, chunk) {
  ws.buf = Buffer.concat([ws.buf, chunk]);
  for (;;) {
    const b = ws.buf;
    if (b.length < 2) return;
    const opcode = b[0] & 0x0f;
    const masked = (b[1] & 0x80) !== 0;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
    if (len > 1 << 20) { ws.socket.destroy(); return; }
    const maskOff = off;
    if (masked) off += 4;
    if (b.length < off + len) return;
    const payload = Buffer.from(b.subarray(off, off + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[maskOff + (i & 3)];
    ws.buf = b.subarray(off + len);
    if (opcode === 0x8) {          // close: answer and hang up
      ws.socket.end(wsFrame(0x8, payload.subarray(0, 2)));
      wsClients.delete(ws);
      return;
    }
    if (opcode === 0x9) ws.socket.write(wsFrame(0xA, payload)); // ping -> pong
    // text/binary/pong: ignored, the socket is read-only
  }
}

function wsSend(ws, first) {
  const frame = { type: 'update', status: statusView(), devices: devicesView(), clients: clientsView() };
  const fresh = first ? events.slice(-50) : events.filter((e) => e.id > ws.lastEvent);
  frame.events = fresh;
  if (events.length) ws.lastEvent = events[events.length - 1].id;
  // Like the C server: every frame carries the newest sample, t numbering the samples.
  const devs = {};
  for (const [k, v] of Object.entries(bw.dev)) if (v.in.length) devs[k] = [v.in[v.in.length - 1], v.out[v.out.length - 1]];
  frame.bandwidth = { t: sampleSerial, devices: devs };
  ws.version = version;
  ws.socket.write(wsFrame(0x1, Buffer.from(JSON.stringify(frame))));
}

server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://x');
  const key = req.headers['sec-websocket-key'];
  if (down || url.pathname !== '/ws' || (req.headers.upgrade || '').toLowerCase() !== 'websocket'
      || req.headers['sec-websocket-version'] !== '13' || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.setNoDelay(true);
  const ws = { socket, buf: Buffer.alloc(0), lastEvent: 0, version: -1 };
  wsClients.add(ws);
  log('WS /ws open');
  socket.on('data', (c) => wsOnData(ws, c));
  socket.on('close', () => { wsClients.delete(ws); log('WS /ws closed'); });
  socket.on('error', () => wsClients.delete(ws));
  wsSend(ws, true);
});

// At most one frame every 500 ms, only when something changed.
setInterval(() => {
  for (const ws of wsClients) {
    if (ws.version !== version && !ws.socket.destroyed) wsSend(ws, false);
  }
}, 500).unref();

server.listen(opt.port, opt.host, () => {
  const a = server.address();
  console.log(`mock usbip dashboard (${opt.platform}${opt.password ? ', password set' : ', no password yet'}) `
    + `listening on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`);
});
