// The page against the mock server (dev-server.mjs) in headless Chromium: every view
// renders, the auth flows and field errors work, the socket fallback polls, and the
// console stays clean. Writes screenshots to OUT_DIR (default /tmp/web-smoke).
//
//   npm run build && node --test tests/smoke.mjs      (or: npm run smoke)
//   CHROMIUM=/usr/bin/chromium OUT_DIR=/tmp/shots node --test tests/smoke.mjs
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.OUT_DIR || '/tmp/web-smoke';
mkdirSync(OUT, { recursive: true });

function startMock(args = []) {
  const proc = spawn(process.execPath, [join(here, '..', 'dev-server.mjs'), '--port', '0', '--quiet', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock did not start: ${out}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+\/)/);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1] }); }
    });
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('exit', (code) => reject(new Error(`mock exited ${code}: ${out}`)));
  });
}

async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'web-smoke-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  return { browser, cleanup: async () => { await browser.close(); rmSync(profile, { recursive: true, force: true }); } };
}

// Console errors and warnings, page exceptions, CSP violations: all must stay empty.
function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e}`));
  return problems;
}

const text = (page, id) => page.getByTestId(id).innerText();

test('dashboard against the mock', async (t) => {
  const mock = await startMock();
  const { browser, cleanup } = await launch();
  t.after(async () => { await cleanup(); mock.proc.kill(); });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  const problems = watch(page);
  await page.goto(mock.url);

  await t.test('read-only views render and move', async () => {
    await page.getByTestId('device-1-1.3').waitFor();
    await page.getByTestId('device-1-1.1').waitFor();
    await page.getByTestId('hub-1-1').waitFor();
    assert.match(await text(page, 'device-state-1-1.3'), /^in use by 192\.168\.1\.20$/);
    assert.match(await text(page, 'device-state-1-1.1'), /^available$/);
    await page.getByTestId('client-3').waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="conn-state"]').dataset.state === 'live');
    await page.waitForFunction(() => /[1-9]/.test(document.querySelector('[data-testid="rate-1-1.3"]').textContent));
    const before = await text(page, 'rate-1-1.3');
    await page.waitForFunction((b) => document.querySelector('[data-testid="rate-1-1.3"]').textContent !== b, before);
    assert.match(await text(page, 'rate-1-1.3'), /B\/s/);
    const n = await page.locator('[data-testid="events"] li').count();
    assert.ok(n > 10, `events listed: ${n}`);
    const ids = await page.locator('[data-testid="events"] li').evaluateAll((lis) => lis.map((l) => Number(l.dataset.id)));
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
    assert.equal(new Set(ids).size, ids.length, 'no duplicate events');
    assert.ok(await page.locator('#chart canvas').count() >= 1, 'chart drawn');
    assert.match(await text(page, 'memory'), /heap/);
  });

  await t.test('actions are disabled before a password exists', async () => {
    await page.getByTestId('setup-password').waitFor();
    assert.equal(await page.getByTestId('settings-save').isDisabled(), true);
    assert.equal(await page.getByTestId('export-1-1.3').isDisabled(), true);
    assert.equal(await page.getByTestId('disconnect-3').isDisabled(), true);
    assert.equal(await page.evaluate(() => document.querySelector('[data-testid="settings-save"]').disabled), true);
    await page.screenshot({ path: join(OUT, 'desk-setup.png'), fullPage: true });
  });

  await t.test('set the password, wrong login, slow-down, login', async () => {
    await page.getByTestId('setup-password').fill('short');
    await page.getByTestId('setup-password-submit').click();
    await page.getByText('Use 8 to 64 characters.').waitFor();
    await page.getByTestId('setup-password').fill('lab bench 42');
    await page.getByTestId('setup-password-submit').click();
    await page.getByTestId('login-password').waitFor();
    assert.equal(await page.getByTestId('login-password').inputValue(), 'lab bench 42', 'login prefilled');
    await page.getByTestId('login-password').fill('wrong password');
    await page.getByTestId('login-submit').click();
    await page.getByText('Wrong password.').waitFor();
    await page.getByTestId('login-password').fill('still wrong');
    await page.getByTestId('login-submit').click();
    await page.getByText(/try again in \d+ s/).waitFor();
    await page.waitForFunction(() => !document.querySelector('[data-testid="login-submit"]').disabled, null, { timeout: 5000 });
    await page.getByTestId('login-password').fill('lab bench 42');
    await page.getByTestId('login-submit').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="settings-save"]').disabled);
    assert.equal(await page.getByTestId('login-password').isVisible(), false);
    assert.equal(await page.getByTestId('logout').isVisible(), true);
  });

  await t.test('settings: field errors next to the field, then a good save', async () => {
    await page.getByTestId('access-mode').selectOption('closed');
    await page.getByTestId('access-allow').fill('192.168.1.0/24\n\nnot-an-address');
    await page.getByTestId('settings-save').click();
    const err = page.locator('#s-access-allow ~ .field-error');
    await err.waitFor();
    assert.match(await err.innerText(), /^line 3: .*not-an-address/);
    assert.equal(await page.getByTestId('access-allow').getAttribute('aria-invalid'), 'true');

    await page.getByTestId('access-allow').fill('192.168.1.0/24\n::1');
    await page.getByTestId('settings-hostname').fill('bad_host!');
    await page.getByTestId('settings-save').click();
    await page.locator('#s-hostname ~ .field-error').waitFor();

    await page.getByTestId('net-mode').selectOption('static');
    await page.getByTestId('settings-hostname').fill('bench-7');
    await page.getByTestId('net-address').fill('10.0.0');
    await page.getByTestId('settings-save').click();
    await page.locator('#s-net-address ~ .field-error').waitFor(); // shown only when not empty
    assert.match(await page.locator('#s-net-address ~ .field-error').innerText(), /not an IPv4 address/);
    await page.getByTestId('net-mode').selectOption('dhcp');
    await page.getByTestId('net-address').evaluate((i) => { i.value = ''; i.dispatchEvent(new Event('input', { bubbles: true })); });

    await page.getByTestId('settings-save').click();
    await page.getByText(/^Saved\./).waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="hostname"]').textContent === 'bench-7');
    assert.equal(await page.getByTestId('access-mode').inputValue(), 'closed');
  });

  await t.test('device and client actions', async () => {
    await page.getByTestId('export-1-1.1').uncheck();
    await page.locator('[data-testid="events"]').getByText('1-1.1 hidden from DEVLIST').waitFor();
    assert.equal(await page.getByTestId('export-1-1.1').isChecked(), false);
    await page.getByTestId('reset-1-1.3').click();
    await page.getByText('1-1.3 was reset.').waitFor();
    await page.getByTestId('disconnect-3').click();
    await page.getByTestId('client-3').waitFor({ state: 'detached' });
    await page.waitForFunction(() => document.querySelector('[data-testid="device-state-1-1.3"]').textContent === 'available');
  });

  await t.test('change password field errors', async () => {
    await page.getByTestId('password-current').fill('not it at all');
    await page.getByTestId('password-new').fill('another secret');
    await page.getByTestId('password-confirm').fill('another secret');
    await page.getByTestId('password-save').click();
    await page.locator('#p-current ~ .field-error').waitFor();
    assert.match(await page.locator('#p-current ~ .field-error').innerText(), /wrong/);
  });

  await t.test('logout makes the page read-only again', async () => {
    await page.screenshot({ path: join(OUT, 'desk.png'), fullPage: true });
    await page.getByTestId('logout').click();
    await page.getByTestId('login-password').waitFor();
    assert.equal(await page.getByTestId('settings-save').isDisabled(), true);
  });

  await t.test('phone layout and dark scheme', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    const pp = watch(p);
    await p.goto(mock.url);
    await p.getByTestId('device-1-1.3').waitFor();
    await p.waitForFunction(() => /[1-9]/.test(document.querySelector('[data-testid="rate-1-1.3"]').textContent));
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px)`);
    await p.screenshot({ path: join(OUT, 'phone.png'), fullPage: true });
    await phone.close();
    const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    const d = await dark.newPage();
    const dp = watch(d);
    await d.goto(mock.url);
    await d.getByTestId('device-1-1.3').waitFor();
    await d.waitForTimeout(1500);
    await d.screenshot({ path: join(OUT, 'desk-dark.png'), fullPage: true });
    await dark.close();
    assert.deepEqual([...pp, ...dp], []);
  });

  await t.test('no sideways scrolling on the desktop', async () => {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `overflow ${overflow}px`);
  });

  await t.test('console clean', () => {
    // Chromium logs every 4xx reply; the steps above asked for exactly these on purpose.
    const expected = /Failed to load resource: the server responded with a status of (400|401|403|429) /;
    assert.deepEqual(problems.filter((p) => !expected.test(p)), []);
    assert.ok(problems.length <= 8, problems.join('\n'));
  });
});

test('falls back to polling while the WebSocket is down', async (t) => {
  const mock = await startMock(['--platform', 'posix', '--password', 'lab bench 42']);
  const { browser, cleanup } = await launch();
  t.after(async () => { await cleanup(); mock.proc.kill(); });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Every socket the page opens is closed at once.
  await ctx.routeWebSocket(/\/ws$/, (ws) => ws.close());
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  await page.goto(mock.url);
  // State and text are read together: between two polls a reconnect attempt
  // may show "connecting" for a moment.
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="conn-state"]');
    return el.dataset.state === 'polling' && /polling/.test(el.textContent);
  });
  await page.getByTestId('device-1-1.3').waitFor();
  const before = await text(page, 'rate-1-1.3');
  await page.waitForFunction((b) => document.querySelector('[data-testid="rate-1-1.3"]').textContent !== b, before);
  assert.match(await text(page, 'memory'), /RSS/);
  assert.equal(await page.getByTestId('link').isVisible(), false, 'no link on the daemon');
  // Logged out, with a password set: the login form and no setup form.
  assert.equal(await page.getByTestId('setup-password').isVisible(), false);
  await page.getByTestId('login-password').fill('lab bench 42');
  await page.getByTestId('login-submit').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid="settings-save"]').disabled);
  assert.equal(await page.getByTestId('reboot').isDisabled(), true, 'reboot is firmware-only');
  await page.screenshot({ path: join(OUT, 'desk-polling.png'), fullPage: true });
});
