// USB/IP server dashboard: plain DOM, one WebSocket, polling while it is down.
// The JSON contract is docs/api.md.
import { api, ApiError, setCsrf } from './api.js';
import { BandwidthChart } from './chart.js';
import { fmtBytes, fmtRate, fmtInt, fmtDuration, fmtClock, fmtSpeed, fmtClass } from './format.js';

const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 500;
const POLL_MS = 2000;

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
function setText(el, s) {
  s = String(s);
  if (el.textContent !== s) el.textContent = s;
}
function setAttr(el, k, v) {
  if (v === null || v === undefined) { if (el.hasAttribute(k)) el.removeAttribute(k); }
  else if (el.getAttribute(k) !== String(v)) el.setAttribute(k, v);
}

// ------------------------------------------------------------------ state
const S = {
  session: { password_set: null, logged_in: false },
  status: null,
  statusAt: 0,          // Date.now() when status arrived
  offset: null,         // wall-clock epoch seconds of server uptime 0
  devices: [],
  clients: [],
  clientsAt: 0,
  settings: null,
  settingsDirty: false,
  allowLines: [],       // textarea line number of each allowlist entry sent
  eventsNext: 0,
  live: false,          // WebSocket delivering frames
  pollOk: null,         // last poll result while the socket is down
  retryAt: 0,
  lastFrameAt: 0,
  lockUntil: 0,         // login refused (429) until then
};
const canAct = () => S.session.password_set === true && S.session.logged_in;
const authState = () => (S.session.password_set === null ? 'unknown'
  : !S.session.password_set ? 'nopw' : S.session.logged_in ? 'in' : 'out');

// ------------------------------------------------------------------ toasts and form errors
function toast(msg, kind = 'info') {
  const box = $('toasts');
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'bad' ? 'alert' : 'status' }, msg);
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'bad' ? 9000 : 5000);
}

function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error, .form-error, .form-ok')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}
function setFieldError(input, msg) {
  input.setAttribute('aria-invalid', 'true');
  const box = input.closest('.field')?.querySelector('.field-error');
  if (box) box.textContent = msg;
}
function formMessage(form, msg, ok = false) {
  const box = form && form.querySelector(ok ? '.form-ok' : '.form-error');
  if (box) box.textContent = msg;
  else toast(msg, ok ? 'good' : 'bad');
}

// A reply's "field" ("network.address", "access.allow[2]", "new", ...) to an input of the form.
function findField(form, field) {
  const m = /^(.*?)(?:\[(\d+)\]|\.(\d+))$/.exec(field);
  const base = m ? m[1] : field;
  const idx = m ? Number(m[2] ?? m[3]) : null;
  const inputs = [...form.querySelectorAll('[data-field]')];
  for (const cand of [field, base]) {
    const input = inputs.find((i) => i.dataset.field.split(/\s+/).includes(cand));
    if (input) {
      let prefix = '';
      if (idx !== null && input.id === 's-access-allow') prefix = `line ${(S.allowLines[idx] ?? idx) + 1}: `;
      else if (idx !== null) prefix = `entry ${idx + 1}: `;
      return { input, prefix };
    }
  }
  return null;
}
function showError(form, e) {
  const hit = form && e.field ? findField(form, e.field) : null;
  if (hit) {
    setFieldError(hit.input, hit.prefix + e.message);
    hit.input.focus();
    return;
  }
  formMessage(form, e.field ? `${e.field}: ${e.message}` : e.message);
}

// Runs a state-changing request and turns the answers every action shares into UI.
async function act(fn, form, retried = false) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 401) {
      setCsrf(null);
      S.session.logged_in = false;
      renderAuth();
      toast('Your session has ended: log in again.', 'bad');
      refreshSession().catch(() => {});
      return null;
    }
    if (e.status === 403 && e.field === 'X-CSRF-Token' && !retried) {
      await refreshSession().catch(() => {});
      if (canAct()) return act(fn, form, true);
      toast('Your session has ended: log in again.', 'bad');
      return null;
    }
    if (e.status === 403 && e.field === 'password') {
      await refreshSession().catch(() => {});
      toast('Set an admin password first.', 'bad');
      return null;
    }
    if (e.status === 501) {
      formMessage(form, `Not supported by this server: ${e.message}`);
      return null;
    }
    if (e.status === 429) {
      formMessage(form, `Too many requests: try again in ${e.retryAfter ?? 'a few'} s.`);
      return null;
    }
    if (e.status === 0) {
      formMessage(form, `Failed: ${e.message}.`);
      return null;
    }
    showError(form, e);
    return null;
  }
}

// ------------------------------------------------------------------ session
// Several refreshes can be in flight (a status frame noticing the password,
// a login finishing): only the newest answer counts, or a stale "logged out"
// could land after a login and drop its CSRF token.
let sessionRequests = 0;
async function refreshSession() {
  const mine = ++sessionRequests;
  const s = await api('GET', '/api/session');
  if (mine !== sessionRequests) return;
  S.session = { password_set: !!s.password_set, logged_in: !!s.logged_in };
  if (!s.logged_in) setCsrf(null);
  else if (s.csrf) setCsrf(s.csrf);
  renderAuth();
}

function renderAuth() {
  const st = authState();
  document.body.dataset.auth = st;
  $('setup-card').hidden = st !== 'nopw';
  $('login-card').hidden = st !== 'out';
  $('logout').hidden = st !== 'in';
  setText($('auth-state'), { in: 'logged in', out: 'read-only', nopw: 'read-only · no password set', unknown: '' }[st]);
  for (const hint of document.querySelectorAll('.auth-hint')) {
    setText(hint, st === 'nopw' ? 'Read-only until an admin password is set.' : `Read-only: ${hint.dataset.what}`);
  }
  syncActionControls();
  syncSystemBox();
}

// Settings, password and system controls: each one disabled by itself (not through its
// fieldset) so that `.disabled` tells the truth to scripts and tests.
function syncFormControls() {
  const ok = canAct();
  const dhcp = $('s-net-mode').value !== 'static';
  const posix = !!S.status && S.status.platform === 'posix';
  for (const box of document.querySelectorAll('.needs-auth')) {
    box.classList.toggle('locked', !ok);
    for (const c of box.querySelectorAll('input, select, textarea, button')) {
      if (c.dataset.busy) continue;
      let off = !ok;
      if (c.classList.contains('static-only') && dhcp) off = true;
      if ((c.id === 'reboot' || c.id === 'factory-reset') && posix) off = true;
      if (c.disabled !== off) c.disabled = off;
    }
  }
}

// Enables or disables device/client controls for the login state, leaving busy ones alone.
function syncActionControls() {
  const ok = canAct();
  const title = authState() === 'nopw' ? 'Set an admin password first' : 'Log in first';
  for (const c of document.querySelectorAll('[data-needs-auth]')) {
    if (c.dataset.busy) continue;
    c.disabled = !ok;
    setAttr(c, 'title', ok ? null : title);
  }
}

// ------------------------------------------------------------------ header
function fmtMemory(m) {
  if (!m || typeof m !== 'object') return '–';
  const parts = [];
  const done = new Set(['heap_free', 'heap_min_free', 'psram_free', 'rss_bytes']);
  if (m.heap_free != null) {
    parts.push(`heap ${fmtBytes(m.heap_free)} free${m.heap_min_free != null ? ` (min ${fmtBytes(m.heap_min_free)})` : ''}`);
  }
  if (m.psram_free != null) parts.push(`PSRAM ${fmtBytes(m.psram_free)} free`);
  if (m.rss_bytes != null) parts.push(`RSS ${fmtBytes(m.rss_bytes)}`);
  for (const [k, v] of Object.entries(m)) {
    if (done.has(k) || typeof v !== 'number') continue;
    parts.push(`${k.replace(/_/g, ' ')} ${/bytes|free|size/.test(k) ? fmtBytes(v) : fmtInt(v)}`);
  }
  return parts.join(' · ') || '–';
}

function applyStatus(st) {
  if (!st || typeof st !== 'object') return;
  const prev = S.status;
  const rebooted = prev && Number.isFinite(st.uptime_s) && st.uptime_s + 1 < prev.uptime_s;
  S.status = { ...(prev || {}), ...st };
  S.statusAt = Date.now();
  if (Number.isFinite(st.uptime_s)) {
    const off = Date.now() / 1000 - st.uptime_s;
    if (S.offset === null || rebooted || Math.abs(off - S.offset) > 3) {
      S.offset = off;
      retimeEvents();
    }
  }
  if (rebooted) onServerRestart();
  if (typeof st.password_set === 'boolean' && st.password_set !== S.session.password_set) {
    refreshSession().catch(() => {});
  }
  renderStatus();
}

function renderStatus() {
  const st = S.status;
  if (!st) return;
  const host = st.hostname || 'USB/IP server';
  setText($('hostname'), host);
  if (document.title !== `${host} · USB/IP`) document.title = `${host} · USB/IP`;
  setText($('f-version'), [st.version, st.platform].filter(Boolean).join(' · ') || '–');
  const link = st.link;
  $('f-link-box').hidden = !link;
  if (link) {
    const el = $('f-link');
    setText(el, link.up
      ? [link.speed_mbps ? `${link.speed_mbps} Mb/s` : 'up', link.ipv4].filter(Boolean).join(' · ')
      : 'down');
    el.dataset.up = link.up ? 'yes' : 'no';
  }
  setText($('f-memory'), fmtMemory(st.memory));
  // An empty hostname setting leaves the name the server has: show that one.
  if ($('s-hostname').placeholder !== host) $('s-hostname').placeholder = host;
  const n = (v, one, many) => (Number.isFinite(v) ? `${v} ${v === 1 ? one : many}` : null);
  setText($('f-usbip'), [st.usbip_port ? `port ${st.usbip_port}` : null, n(st.devices, 'device', 'devices'),
    n(st.clients, 'client', 'clients')].filter(Boolean).join(' · ') || '–');
  tickUptime();
  syncSystemBox();
}
function tickUptime() {
  if (!S.status || !Number.isFinite(S.status.uptime_s)) return;
  setText($('f-uptime'), fmtDuration(S.status.uptime_s + (Date.now() - S.statusAt) / 1000));
}

// The server restarted (uptime went back): its event ids and history start again.
function onServerRestart() {
  S.eventsNext = 0;
  for (const li of [...eventList.children]) li.remove();
  eventEls.clear();
  renderEventsMeta();
  chart.clear();
  refreshSession().catch(() => {});
  catchUp();
}

// ------------------------------------------------------------------ connection indicator
function renderConn() {
  const el = $('conn');
  let state;
  let text;
  const wait = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
  const retry = wait ? ` · retry in ${wait} s` : ' · retrying';
  if (S.live) { state = 'live'; text = 'live'; }
  else if (S.pollOk === true) { state = 'polling'; text = `polling every 2 s${retry}`; }
  else if (S.pollOk === false) { state = 'offline'; text = `offline${retry}`; }
  else { state = 'connecting'; text = 'connecting…'; }
  if (el.dataset.state !== state) el.dataset.state = state;
  setText($('conn-text'), text);
  setAttr(el, 'title', S.live ? 'Live updates over the WebSocket' : 'The WebSocket is down; the page polls the server');
}

// ------------------------------------------------------------------ devices
const tree = $('device-tree');
const rowEls = new Map(); // tree key -> row element

function splitBusid(busid) {
  const m = /^(\d+)-(\d+(?:\.\d+)*)$/.exec(String(busid));
  if (!m) return null;
  return { bus: Number(m[1]), ports: m[2].split('.').map(Number) };
}
function cmpPaths(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function applyDevices(list) {
  S.devices = list.filter((d) => d && typeof d.busid === 'string');
  renderDevices();
  renderRates();
}

function renderDevices() {
  // Tree nodes: every port-path prefix of every device; prefixes that are not devices are hubs.
  const nodes = new Map();
  for (const d of S.devices) {
    const p = splitBusid(d.busid);
    if (!p) { nodes.set(d.busid, { key: d.busid, sort: [Infinity], depth: 0, dev: d }); continue; }
    for (let k = 1; k <= p.ports.length; k++) {
      const key = `${p.bus}-${p.ports.slice(0, k).join('.')}`;
      const node = nodes.get(key) || { key, sort: [p.bus, ...p.ports.slice(0, k)], depth: k - 1, dev: null };
      if (k === p.ports.length) node.dev = d;
      nodes.set(key, node);
    }
  }
  const order = [...nodes.values()].sort((a, b) => cmpPaths(a.sort, b.sort));
  for (const n of order) {
    if (!n.dev) n.children = order.filter((o) => o.dev && o.key.startsWith(`${n.key}.`)).length;
  }

  const keep = new Set();
  order.forEach((n, i) => {
    const kind = n.dev ? 'dev' : 'hub';
    let row = rowEls.get(n.key);
    if (row && row._kind !== kind) { row.remove(); row = null; }
    if (!row) {
      row = kind === 'dev' ? createDeviceRow(n.key) : createHubRow(n.key);
      rowEls.set(n.key, row);
    }
    keep.add(n.key);
    row.style.setProperty('--depth', n.depth);
    setAttr(row, 'data-depth', n.depth);
    if (kind === 'dev') updateDeviceRow(row, n.dev);
    else setText(row._r.count, `${n.children} device${n.children === 1 ? '' : 's'} behind it`);
    if (tree.children[i] !== row) tree.insertBefore(row, tree.children[i] || null);
  });
  for (const [key, row] of rowEls) if (!keep.has(key)) { row.remove(); rowEls.delete(key); }

  $('devices-empty').hidden = S.devices.length > 0;
  const inUse = S.devices.filter((d) => d.state === 'in_use').length;
  setText($('devices-count'), S.devices.length ? `${S.devices.length} device${S.devices.length === 1 ? '' : 's'} · ${inUse} in use` : '');
  syncActionControls();
}

function createHubRow(key) {
  const count = h('span', { class: 'muted' });
  const row = h('div', { class: 'row hub', role: 'listitem', 'data-testid': `hub-${key}` },
    h('span', { class: 'hub-icon', 'aria-hidden': 'true' }),
    h('span', { class: 'hub-name' }, `hub ${key}`), count);
  row._kind = 'hub';
  row._r = { count };
  return row;
}

function createDeviceRow(busid) {
  const r = {
    vidpid: h('span', { class: 'mono vidpid' }),
    hidden: h('span', { class: 'tag', hidden: true }, 'hidden'),
    product: h('strong', { class: 'product' }),
    mfr: h('span', { class: 'muted mfr' }),
    meta: h('div', { class: 'dev-meta muted' }),
    stats: h('div', { class: 'dev-stats muted' }),
    badge: h('span', { class: 'badge' }),
    exp: h('input', { type: 'checkbox', role: 'switch', 'data-testid': `export-${busid}`, 'data-needs-auth': true, 'aria-label': `Export ${busid}` }),
    reset: h('button', { type: 'button', class: 'btn btn-small', 'data-testid': `reset-${busid}`, 'data-needs-auth': true }, 'Reset'),
  };
  r.state = h('div', { class: 'dev-state', 'data-testid': `device-state-${busid}` }, r.badge);
  const row = h('div', { class: 'row dev', role: 'listitem', 'data-testid': `device-${busid}`, 'data-busid': busid },
    h('div', { class: 'dev-main' },
      h('div', { class: 'dev-title' }, h('span', { class: 'mono busid' }, busid), r.vidpid, r.hidden),
      h('div', { class: 'dev-name' }, r.product, ' ', r.mfr),
      r.meta, r.stats),
    r.state,
    h('div', { class: 'dev-actions' },
      h('label', { class: 'switch', title: 'Listed in DEVLIST and importable' }, r.exp, h('span', {}, 'exported')),
      r.reset));
  row._kind = 'dev';
  row._r = r;
  r.exp.addEventListener('change', () => toggleExport(busid, row));
  r.reset.addEventListener('click', () => resetDevice(busid, row));
  return row;
}

function updateDeviceRow(row, d) {
  const r = row._r;
  setText(r.vidpid, d.vid && d.pid ? `${d.vid}:${d.pid}` : '');
  setText(r.product, d.product || 'Unnamed device');
  setText(r.mfr, d.manufacturer || '');
  setText(r.meta, `${fmtSpeed(d.speed)} · ${fmtClass(d)}`);
  const s = d.stats || {};
  setText(r.stats, `${fmtInt(s.urbs)} URBs · in ${fmtBytes(s.bytes_in)} · out ${fmtBytes(s.bytes_out)} · ${fmtInt(s.errors)} error${s.errors === 1 ? '' : 's'}`);
  r.stats.classList.toggle('has-errors', s.errors > 0);
  const state = d.state === 'in_use' ? `in use by ${d.client && d.client.address ? d.client.address : 'a client'}` : d.state || 'unknown';
  setText(r.badge, state);
  setAttr(r.state, 'data-state', d.state || 'unknown');
  r.hidden.hidden = d.exported !== false;
  row.classList.toggle('not-exported', d.exported === false);
  row.classList.toggle('gone', d.state === 'gone');
  if (!row._pendingExport && r.exp.checked !== (d.exported !== false)) r.exp.checked = d.exported !== false;
}

async function toggleExport(busid, row) {
  const input = row._r.exp;
  const want = input.checked;
  row._pendingExport = true;
  input.dataset.busy = '1';
  input.disabled = true;
  const ok = await act(() => api('POST', `/api/devices/${encodeURIComponent(busid)}/export`, { exported: want }), null);
  row._pendingExport = false;
  delete input.dataset.busy;
  if (ok) {
    const d = S.devices.find((x) => x.busid === busid);
    if (d) d.exported = want;
    toast(want ? `${busid} is exported again.` : `${busid} is hidden from the device list.`, 'good');
  } else {
    input.checked = !want;
  }
  renderDevices();
}

async function resetDevice(busid, row) {
  const b = row._r.reset;
  b.dataset.busy = '1';
  b.disabled = true;
  setText(b, 'Resetting…');
  const ok = await act(() => api('POST', `/api/devices/${encodeURIComponent(busid)}/reset`), null);
  delete b.dataset.busy;
  setText(b, 'Reset');
  if (ok) toast(`${busid} was reset.`, 'good');
  syncActionControls();
}

// ------------------------------------------------------------------ bandwidth
let cursorIdx = null;
const chart = new BandwidthChart($('chart'), (idx) => { cursorIdx = idx; renderRates(); });
const rateEls = new Map();

function renderRates() {
  const smp = chart.sample(cursorIdx);
  setText($('bw-when'), cursorIdx === null || cursorIdx === undefined || !smp.when
    ? 'last 5 minutes' : `at ${fmtClock(smp.when)}`);
  const ids = [...new Set([...S.devices.map((d) => d.busid), ...Object.keys(smp.rates)])].sort((a, b) => {
    const pa = splitBusid(a); const pb = splitBusid(b);
    return pa && pb ? cmpPaths([pa.bus, ...pa.ports], [pb.bus, ...pb.ports]) : a.localeCompare(b);
  });
  const list = $('rates');
  ids.forEach((id, i) => {
    let li = rateEls.get(id);
    if (!li) {
      const r = {
        sw: h('span', { class: 'swatch', 'aria-hidden': 'true' }),
        name: h('span', { class: 'muted rate-name' }),
        rin: h('span', { class: 'rate-in' }),
        rout: h('span', { class: 'rate-out' }),
      };
      r.vals = h('span', { class: 'rate-vals', 'data-testid': `rate-${id}` },
        h('span', { class: 'dir' }, 'in '), r.rin, h('span', { class: 'dir' }, ' out '), r.rout);
      r.sw.title = 'solid: in (device to client), dashed: out';
      li = h('li', { 'data-busid': id }, r.sw,
        h('span', { class: 'rate-id' }, h('span', { class: 'mono' }, id), ' ', r.name), r.vals);
      li._r = r;
      rateEls.set(id, li);
    }
    const r = li._r;
    const c = chart.colorOf(id);
    if (r.sw.style.color !== c) r.sw.style.color = c;
    const d = S.devices.find((x) => x.busid === id);
    setText(r.name, d ? d.product || '' : 'gone');
    const [vin, vout] = smp.rates[id] || [0, 0];
    setText(r.rin, fmtRate(vin ?? 0));
    setText(r.rout, fmtRate(vout ?? 0));
    setAttr(r.vals, 'data-in', vin ?? 0);
    setAttr(r.vals, 'data-out', vout ?? 0);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const [id, li] of rateEls) if (!ids.includes(id)) { li.remove(); rateEls.delete(id); }
}

async function loadBandwidth() {
  const b = await api('GET', '/api/bandwidth');
  chart.seed(b && b.devices, Date.now() / 1000);
  renderRates();
}

// ------------------------------------------------------------------ clients
const clientRows = new Map();

function applyClients(list) {
  S.clients = list.filter((c) => c && c.id !== undefined);
  S.clientsAt = Date.now();
  renderClients();
}

function renderClients() {
  const body = $('clients-body');
  const ids = new Set();
  S.clients.forEach((c, i) => {
    const id = String(c.id);
    ids.add(id);
    let tr = clientRows.get(id);
    if (!tr) {
      const r = {
        addr: h('td', { 'data-label': 'Address', class: 'mono' }),
        busid: h('td', { 'data-label': 'Bus ID', class: 'mono' }),
        conn: h('td', { 'data-label': 'Connected' }),
        urbs: h('td', { 'data-label': 'URBs', class: 'num' }),
        bin: h('td', { 'data-label': 'In', class: 'num' }),
        bout: h('td', { 'data-label': 'Out', class: 'num' }),
        errs: h('td', { 'data-label': 'Errors', class: 'num' }),
        btn: h('button', { type: 'button', class: 'btn btn-small', 'data-testid': `disconnect-${id}`, 'data-needs-auth': true }, 'Disconnect'),
      };
      tr = h('tr', { 'data-testid': `client-${id}` }, r.addr, r.busid, r.conn, r.urbs, r.bin, r.bout, r.errs,
        h('td', { class: 'actions' }, r.btn));
      tr._r = r;
      r.btn.addEventListener('click', () => disconnectClient(id, tr));
      clientRows.set(id, tr);
    }
    const r = tr._r;
    tr._c = c;
    setText(r.addr, c.address || '?');
    setText(r.busid, c.busid || 'not imported');
    r.busid.classList.toggle('muted', !c.busid);
    setText(r.urbs, fmtInt(c.urbs));
    setText(r.bin, fmtBytes(c.bytes_in));
    setText(r.bout, fmtBytes(c.bytes_out));
    setText(r.errs, fmtInt(c.errors));
    r.errs.classList.toggle('bad', c.errors > 0);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  for (const [id, tr] of clientRows) if (!ids.has(id)) { tr.remove(); clientRows.delete(id); }
  tickClients();
  $('clients-empty').hidden = S.clients.length > 0;
  $('clients-table').hidden = S.clients.length === 0;
  setText($('clients-count'), S.clients.length ? `${S.clients.length} connected` : '');
  syncActionControls();
}
function tickClients() {
  const extra = (Date.now() - S.clientsAt) / 1000;
  for (const tr of clientRows.values()) {
    if (tr._c) setText(tr._r.conn, fmtDuration((tr._c.connected_s || 0) + extra));
  }
}

async function disconnectClient(id, tr) {
  const b = tr._r.btn;
  b.dataset.busy = '1';
  b.disabled = true;
  const ok = await act(() => api('POST', `/api/clients/${encodeURIComponent(id)}/disconnect`), null);
  delete b.dataset.busy;
  if (ok) toast(`Client ${tr._c ? tr._c.address : id} disconnected.`, 'good');
  syncActionControls();
}

// ------------------------------------------------------------------ events
const eventList = $('events');
const eventEls = new Map(); // id -> li

function eventSeverity(type) {
  if (/error|fail|refus|denied|gone|stall|lost|down/i.test(type)) return 'bad';
  if (/import|connect|attach|added|login|up|boot|export/i.test(type) && !/disconnect/i.test(type)) return 'good';
  return 'info';
}
// Wall-clock time of an event: from its age when the server sends one, else from time_s
// read as seconds of uptime.
function eventClock(li) {
  if (Number.isFinite(li._wall)) return fmtClock(li._wall);
  const e = li._e;
  return S.offset !== null && Number.isFinite(e.time_s) ? fmtClock(S.offset + e.time_s) : '';
}

function addEvents(list) {
  if (!Array.isArray(list) || !list.length) return;
  const sorted = list.filter((e) => e && Number.isFinite(e.id)).sort((a, b) => a.id - b.id);
  for (const e of sorted) {
    S.eventsNext = Math.max(S.eventsNext, e.id);
    if (eventEls.has(e.id)) continue;
    const type = String(e.type || 'event');
    const where = [e.busid, e.peer].filter(Boolean).join(' · ');
    const time = h('time', { title: Number.isFinite(e.time_s) ? `t = ${e.time_s} s` : null });
    const li = h('li', { 'data-id': e.id, 'data-sev': eventSeverity(type) },
      time, h('span', { class: 'etype' }, type.replace(/_/g, ' ')),
      h('span', { class: 'emsg' }, e.message || ''),
      where ? h('span', { class: 'ewhere mono' }, where) : null);
    li._e = e;
    li._wall = Number.isFinite(e.age_s) ? Date.now() / 1000 - e.age_s : null;
    time.textContent = eventClock(li);
    // Newest first: usually a prepend; an older one (catch-up after a gap) goes in its place.
    let before = eventList.firstElementChild;
    while (before && Number(before.dataset.id) > e.id) before = before.nextElementSibling;
    eventList.insertBefore(li, before);
    eventEls.set(e.id, li);
  }
  while (eventList.children.length > MAX_EVENTS) {
    const last = eventList.lastElementChild;
    eventEls.delete(Number(last.dataset.id));
    last.remove();
  }
  renderEventsMeta();
}
function retimeEvents() {
  for (const li of eventList.children) setText(li.firstElementChild, eventClock(li));
}
function renderEventsMeta() {
  const n = eventList.children.length;
  $('events-empty').hidden = n > 0;
  setText($('events-count'), n ? `${n} shown · newest first` : '');
}

let eventsBusy = false;
async function loadEvents() {
  if (eventsBusy) return;
  eventsBusy = true;
  try {
    for (let i = 0; i < 20; i++) { // at most 100 per reply: keep asking while replies are full
      const since = S.eventsNext;
      const r = await api('GET', `/api/events?since=${since}`);
      const list = (r && r.events) || [];
      addEvents(list);
      if (r && Number.isFinite(r.next) && r.next > S.eventsNext) S.eventsNext = r.next;
      if (list.length < 100) break;
    }
  } finally {
    eventsBusy = false;
  }
}

// ------------------------------------------------------------------ settings
const settingsForm = $('settings-form');
function normSettings(s) {
  s = s || {};
  const n = s.network || {};
  const a = s.access || {};
  return {
    hostname: s.hostname ?? '',
    network: { mode: n.mode || 'dhcp', address: n.address || '', netmask: n.netmask || '', gateway: n.gateway || '', dns: n.dns || '' },
    access: { mode: a.mode || 'open', allow: Array.isArray(a.allow) ? a.allow.map(String) : [] },
    syslog: { target: (s.syslog && s.syslog.target) || '' },
  };
}
function fillSettings(s) {
  const n = normSettings(s);
  $('s-hostname').value = n.hostname;
  $('s-syslog').value = n.syslog.target;
  $('s-net-mode').value = n.network.mode;
  $('s-net-address').value = n.network.address;
  $('s-net-netmask').value = n.network.netmask;
  $('s-net-gateway').value = n.network.gateway;
  $('s-net-dns').value = n.network.dns;
  $('s-access-mode').value = n.access.mode;
  $('s-access-allow').value = n.access.allow.join('\n');
  S.settingsDirty = false;
  settingsForm.classList.remove('dirty');
  syncNetFields();
}
function readSettings() {
  const lines = $('s-access-allow').value.split('\n');
  const allow = [];
  S.allowLines = [];
  lines.forEach((l, i) => {
    const v = l.trim();
    if (v) { allow.push(v); S.allowLines.push(i); }
  });
  return {
    hostname: $('s-hostname').value.trim(),
    network: {
      mode: $('s-net-mode').value,
      address: $('s-net-address').value.trim(),
      netmask: $('s-net-netmask').value.trim(),
      gateway: $('s-net-gateway').value.trim(),
      dns: $('s-net-dns').value.trim(),
    },
    access: { mode: $('s-access-mode').value, allow },
    syslog: { target: $('s-syslog').value.trim() },
  };
}
const syncNetFields = () => syncFormControls();
async function loadSettings(force = false) {
  const s = await api('GET', '/api/settings');
  S.settings = s;
  if (force || !S.settingsDirty) fillSettings(s);
}

async function saveSettings(ev) {
  ev.preventDefault();
  clearErrors(settingsForm);
  const cur = readSettings();
  const old = normSettings(S.settings);
  const patch = {};
  for (const k of Object.keys(cur)) if (JSON.stringify(cur[k]) !== JSON.stringify(old[k])) patch[k] = cur[k];
  if (!Object.keys(patch).length) { formMessage(settingsForm, 'Nothing to save: no changes.', true); return; }
  const btn = settingsForm.querySelector('[data-testid="settings-save"]');
  btn.dataset.busy = '1';
  btn.disabled = true;
  const r = await act(() => api('PUT', '/api/settings', patch), settingsForm);
  delete btn.dataset.busy;
  syncFormControls();
  if (!r) return;
  try { await loadSettings(true); } catch { S.settings = { ...S.settings, ...patch }; fillSettings(S.settings); }
  formMessage(settingsForm, r.reboot_needed
    ? 'Saved. Hostname, network and syslog changes take effect after a reboot (see System below).'
    : 'Saved.', true);
  if (r.reboot_needed) $('reboot').classList.add('attention');
}

// ------------------------------------------------------------------ password forms
function checkNewPassword(input) {
  const n = [...input.value].length;
  if (n < 8 || n > 64) { setFieldError(input, 'Use 8 to 64 characters.'); input.focus(); return false; }
  return true;
}

async function setupPassword(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  clearErrors(form);
  const input = $('setup-password');
  if (!checkNewPassword(input)) return;
  const pw = input.value;
  const btn = form.querySelector('[type=submit]');
  btn.disabled = true;
  try {
    await api('POST', '/api/password', { new: pw });
  } catch (e) {
    btn.disabled = false;
    if (e instanceof ApiError && (e.status === 401 || (e.status === 403 && e.field !== 'new'))) {
      formMessage(form, 'A password has been set meanwhile: log in with it.');
      refreshSession().catch(() => {});
      return;
    }
    showError(form, e);
    return;
  }
  // Setting the password opens no session: the login form comes next, filled in.
  btn.disabled = false;
  input.value = '';
  await refreshSession().catch(() => {});
  const lp = $('login-password');
  lp.value = pw;
  toast('Admin password set: log in with it.', 'good');
  $('login-form').querySelector('[type=submit]').focus();
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  clearErrors(form);
  const input = $('login-password');
  if (!input.value) { setFieldError(input, 'Enter the admin password.'); input.focus(); return; }
  if (Date.now() < S.lockUntil) { tickLockout(); return; }
  const btn = form.querySelector('[type=submit]');
  btn.disabled = true;
  try {
    const r = await api('POST', '/api/login', { password: input.value });
    setCsrf(r && r.csrf);
    input.value = '';
    await refreshSession();
    toast('Logged in.', 'good');
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 429) {
      S.lockUntil = Date.now() + (e.retryAfter ?? 1) * 1000;
      tickLockout();
    } else if (e.status === 401) {
      setFieldError(input, 'Wrong password.');
      input.select();
    } else if (e.status === 403 && e.field === 'password') {
      await refreshSession().catch(() => {});
    } else {
      showError(form, e);
    }
  } finally {
    if (Date.now() >= S.lockUntil) btn.disabled = false;
  }
}
function tickLockout() {
  const form = $('login-form');
  const btn = form.querySelector('[type=submit]');
  const box = form.querySelector('.form-error');
  const left = Math.ceil((S.lockUntil - Date.now()) / 1000);
  if (left > 0) {
    setText(box, `Too many failed attempts: try again in ${left} s.`);
    btn.disabled = true;
  } else if (S.lockUntil) {
    S.lockUntil = 0;
    setText(box, '');
    btn.disabled = false;
  }
}

async function logout() {
  try { await api('POST', '/api/logout'); } catch { /* the session is dropped here either way */ }
  setCsrf(null);
  S.session.logged_in = false;
  renderAuth();
  await refreshSession().catch(() => {});
  toast('Logged out.');
}

async function changePassword(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  clearErrors(form);
  const cur = $('p-current');
  const nw = $('p-new');
  const again = $('p-confirm');
  if (!cur.value) { setFieldError(cur, 'Enter the current password.'); cur.focus(); return; }
  if (!checkNewPassword(nw)) return;
  if (nw.value !== again.value) { setFieldError(again, 'The two new passwords differ.'); again.focus(); return; }
  const r = await act(() => api('POST', '/api/password', { current: cur.value, new: nw.value }), form);
  if (!r) return;
  cur.value = nw.value = again.value = '';
  formMessage(form, 'Password changed. Every other session was logged out.', true);
}

// ------------------------------------------------------------------ system
function syncSystemBox() {
  const posix = S.status && S.status.platform === 'posix';
  for (const id of ['reboot', 'factory-reset']) setAttr($(id), 'title', posix ? 'Not available on the daemon' : null);
  syncFormControls();
  setText($('system-hint'), posix
    ? 'The daemon runs on a host it does not control: reboot and factory reset are firmware-only.'
    : 'Reboot applies hostname, network and syslog changes. A factory reset erases every setting, the admin password included.');
}

// A destructive button asks for a second click within 4 s instead of a modal dialog.
function twoStep(btn, run) {
  const label = btn.textContent;
  let timer = null;
  const disarm = () => { clearTimeout(timer); timer = null; btn.textContent = label; btn.classList.remove('armed'); };
  btn.addEventListener('click', async () => {
    if (!timer) {
      btn.textContent = btn.dataset.confirm;
      btn.classList.add('armed');
      timer = setTimeout(disarm, 4000);
      return;
    }
    disarm();
    btn.dataset.busy = '1';
    btn.disabled = true;
    await run();
    delete btn.dataset.busy;
    syncFormControls();
  });
}

// ------------------------------------------------------------------ live updates
let ws = null;
let backoff = 1000;
let retryTimer = null;
let pollTimer = null;
let pollBusy = false;
let probing = false;

function applyUpdate(f) {
  if (f.status) applyStatus(f.status);
  if (Array.isArray(f.devices)) applyDevices(f.devices);
  if (Array.isArray(f.clients)) applyClients(f.clients);
  if (Array.isArray(f.events)) addEvents(f.events);
  if (f.bandwidth && f.bandwidth.devices) {
    chart.push(Number(f.bandwidth.t), f.bandwidth.devices, Date.now() / 1000);
    renderRates();
  }
}

function connectWs() {
  clearTimeout(retryTimer);
  retryTimer = null;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  let sock;
  try { sock = new WebSocket(url); } catch { wsDown(); return; }
  ws = sock;
  sock.onmessage = (m) => {
    if (sock !== ws) return;
    let f;
    try { f = JSON.parse(m.data); } catch { return; }
    S.lastFrameAt = Date.now();
    const first = !S.live;
    if (first) {
      S.live = true;
      backoff = 1000;
      stopPolling();
      renderConn();
    }
    if (f && f.type === 'update') applyUpdate(f);
    if (first) catchUp();
  };
  sock.onclose = () => { if (sock === ws) { ws = null; wsDown(); } };
}

function wsDown() {
  S.live = false;
  startPolling();
  const delay = Math.round(backoff * (0.8 + Math.random() * 0.4));
  backoff = Math.min(backoff * 2, 30000);
  S.retryAt = Date.now() + delay;
  retryTimer = setTimeout(connectWs, delay);
  renderConn();
}

// After (re)connecting: what happened while the socket was down.
function catchUp() {
  loadEvents().catch(() => {});
  loadBandwidth().catch(() => {});
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(pollOnce, POLL_MS);
  pollOnce();
}
function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
  S.pollOk = null;
}

async function pollOnce() {
  if (pollBusy) return;
  pollBusy = true;
  try {
    applyStatus(await api('GET', '/api/status', undefined, { timeoutMs: 5000 }));
    const [d, c] = await Promise.all([api('GET', '/api/devices'), api('GET', '/api/clients'), loadBandwidth(), loadEvents()]);
    if (d && Array.isArray(d.devices)) applyDevices(d.devices);
    if (c && Array.isArray(c.clients)) applyClients(c.clients);
    if (S.session.password_set === null) await refreshSession().catch(() => {});
    if (!S.settings) await loadSettings().catch(() => {});
    if (!S.live) S.pollOk = true;
  } catch {
    if (!S.live) S.pollOk = false;
  } finally {
    pollBusy = false;
    renderConn();
  }
}

// Once a second: clocks, countdowns, and a check that an open socket still delivers.
function tick() {
  tickUptime();
  tickClients();
  tickLockout();
  renderConn();
  if (S.live && ws && Date.now() - S.lastFrameAt > 15000 && !probing) {
    probing = true;
    api('GET', '/api/status', undefined, { timeoutMs: 5000 })
      .then((st) => { applyStatus(st); S.lastFrameAt = Date.now(); })
      .catch(() => { if (ws) ws.close(); })
      .finally(() => { probing = false; });
  }
}

// ------------------------------------------------------------------ start
function wire() {
  $('setup-form').addEventListener('submit', setupPassword);
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  settingsForm.addEventListener('submit', saveSettings);
  settingsForm.addEventListener('input', (e) => {
    S.settingsDirty = true;
    settingsForm.classList.add('dirty');
    const f = e.target.closest('.field');
    if (f) { setText(f.querySelector('.field-error'), ''); e.target.removeAttribute('aria-invalid'); }
  });
  $('s-net-mode').addEventListener('change', syncNetFields);
  $('settings-revert').addEventListener('click', () => {
    clearErrors(settingsForm);
    if (S.settings) fillSettings(S.settings);
  });
  $('password-form').addEventListener('submit', changePassword);
  for (const f of [$('setup-form'), $('login-form'), $('password-form')]) {
    f.addEventListener('input', (e) => {
      const fl = e.target.closest('.field');
      if (fl) { setText(fl.querySelector('.field-error'), ''); e.target.removeAttribute('aria-invalid'); }
    });
  }
  for (const cb of document.querySelectorAll('.pw-show')) {
    cb.addEventListener('change', () => { $(cb.dataset.for).type = cb.checked ? 'text' : 'password'; });
  }
  const sys = $('system-box');
  twoStep($('reboot'), async () => {
    const r = await act(() => api('POST', '/api/system/reboot'), sys);
    if (r) { toast('Rebooting: the page reconnects when the server is back.', 'good'); $('reboot').classList.remove('attention'); }
  });
  twoStep($('factory-reset'), async () => {
    const r = await act(() => api('POST', '/api/system/factory-reset'), sys);
    if (r) toast('Factory reset: the server restarts with default settings and no admin password.', 'good');
  });
  for (const hint of document.querySelectorAll('.auth-hint')) hint.dataset.what = hint.textContent.replace(/^Log in/, 'log in');
}

async function start() {
  wire();
  renderAuth();
  renderConn();
  await refreshSession().catch(() => {});
  await pollOnce();
  S.pollOk = null;
  loadSettings().catch(() => {});
  connectWs();
  setInterval(tick, 1000);
}

start();
