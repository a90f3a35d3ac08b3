// End to end: the dashboard page in headless Chromium (Debian's, driven by
// playwright-core) against the real usbip-server with its virtual devices,
// and a real USB/IP client (the project's usbip-client tool) moving data.
//
//   USBIP_SERVER=path USBIP_CLIENT=path OUT_DIR=dir node --test dashboard_e2e.mjs
//
// Checks, without reloading the page: the devices are listed; an importing
// client appears and its device's bandwidth moves; the admin password can be
// set and used to log in; switching to closed mode with an allowlist that
// leaves loopback out ends the live session at once and refuses the next
// client, and the page shows the refusal. Writes OUT_DIR/dashboard.png.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../web/package.json'));
const { chromium } = require('playwright-core');

const serverBin = process.env.USBIP_SERVER;
const clientBin = process.env.USBIP_CLIENT;
const outDir = process.env.OUT_DIR || tmpdir();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 30000; // generous: CI machines are small and shared

function startServer(settingsPath) {
  const proc = spawn(serverBin, ['--listen', '127.0.0.1', '--port', '0', '--http', '0',
    '--settings', settingsPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`usbip-server did not start:\n${out}\n${log}`)),
      STEP_MS);
    proc.stdout.on('data', (d) => {
      out += d;
      const web = out.match(/Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
      const usbip = out.match(/listening on 127\.0\.0\.1 port (\d+)/);
      if (web && usbip) {
        clearTimeout(timer);
        resolve({ proc, url: web[1], port: usbip[1], log: () => log });
      }
    });
    proc.on('exit', (code) => reject(new Error(`usbip-server exited ${code}:\n${log}`)));
  });
}

function runClient(args) {
  const proc = spawn(clientBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const done = new Promise((resolve) => proc.on('exit', (code) => resolve({ code, output })));
  return { proc, done, output: () => output };
}

test('dashboard shows devices, live traffic, and enforces access control', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'usbip-web-'));
  const server = await startServer(join(work, 'settings.conf'));
  const profile = join(work, 'chromium-profile');
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic'],
  });
  const reader = { proc: null };
  let page = null;
  let passed = false;
  t.after(async () => {
    if (page && !passed) { // what the page showed when it went wrong
      await page.screenshot({ path: join(outDir, 'dashboard-failure.png'), fullPage: true })
        .catch(() => {});
      writeFileSync(join(outDir, 'dashboard-failure.log'), server.log());
    }
    reader.proc?.kill('SIGKILL');
    await browser.close();
    server.proc.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  });
  page = browser.pages()[0] || await browser.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(STEP_MS);

  await page.goto(server.url);
  for (const busid of ['1-1', '1-2', '1-3', '1-4']) {
    await page.getByTestId(`device-${busid}`).waitFor();
  }
  assert.match(await page.getByTestId('device-state-1-4').innerText(), /available/i);

  // A client imports the Gadget Zero and reads from it.
  const read = runClient(['--port', server.port, '--seconds', '120', 'read', '1-4']);
  reader.proc = read.proc;
  await page.locator('[data-testid^="client-"]').first().waitFor();
  await page.waitForFunction(() => /in use|127\.0\.0\.1/i.test(
    document.querySelector('[data-testid="device-state-1-4"]')?.textContent || ''));
  const rate = page.getByTestId('rate-1-4');
  await page.waitForFunction(() => /[1-9]/.test(
    document.querySelector('[data-testid="rate-1-4"]')?.textContent || ''));
  const first = await rate.innerText();
  await page.waitForFunction((before) =>
    (document.querySelector('[data-testid="rate-1-4"]')?.textContent || '') !== before, first);

  // Set the admin password (none exists), then log in.
  await page.getByTestId('setup-password').fill('lab bench 42');
  await page.getByTestId('setup-password-submit').click();
  await page.getByTestId('setup-password').waitFor({ state: 'hidden' }); // the password exists
  await page.getByTestId('login-password').fill('lab bench 42');
  await page.getByTestId('login-submit').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid="settings-save"]')?.disabled);
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });

  // Closed mode, loopback not allowed: the live session ends at once.
  await page.getByTestId('access-mode').selectOption('closed');
  await page.getByTestId('access-allow').fill('192.0.2.0/24');
  await page.getByTestId('settings-save').click();
  const ended = await read.done;
  assert.notEqual(ended.code, 0, `the reader should have been cut off:\n${ended.output}`);
  reader.proc = null;

  const refused = await runClient(['--port', server.port, 'list']).done;
  assert.equal(refused.code, 1, `a new client must be refused:\n${refused.output}`);
  await page.waitForFunction(() =>
    /refused/i.test(document.querySelector('[data-testid="events"]')?.textContent || ''));
  await page.waitForFunction(() => !document.querySelector('[data-testid^="client-"]'));
  assert.deepEqual(consoleErrors.filter((e) => !/WebSocket/i.test(e)), []);
  writeFileSync(join(outDir, 'dashboard-server.log'), server.log());
  passed = true;
});
