// stores: sqlite
// The demo (`npm start`) in a real browser: Debian's Chromium driven by playwright-core, two
// devices of one user, the devices page, the concurrent-writes panel, revoking a device and
// logging out everywhere. Screenshots go to TESSERA_SCREENSHOTS (default: a temporary folder);
// docs/images/demo-devices.png, which the README shows, is made by running this test with
// TESSERA_SCREENSHOTS=docs/images.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';

const root = new URL('../..', import.meta.url).pathname;
const CHROMIUM = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
const shots = resolve(root, process.env.TESSERA_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'tessera-shots-')));

/** Starts the demo as `npm start` does; resolves with its URL once it says it is listening. */
function startDemo(dataDir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/server.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', TESSERA_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((done, fail) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) done({ child, base: match[1] as string });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => fail(new Error(`the demo exited (${code}) before listening:\n${output}`)));
  });
}

const noChromium = existsSync(CHROMIUM)
  ? undefined
  : `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or TESSERA_NEED_CHROMIUM=1 bash scripts/ensure-services.sh chromium)`;

describe('the demo in Chromium', { skip: noChromium }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-demo-browser-'));
  let demo: { child: ChildProcess; base: string };
  let browser: Browser;

  before(async () => {
    mkdirSync(shots, { recursive: true });
    demo = await startDemo(dataDir);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
  });

  after(async () => {
    await browser?.close();
    if (demo) {
      const exited = new Promise((done) => demo.child.once('exit', done));
      demo.child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A device: its own browser context (cookie jar) and User-Agent. */
  async function device(userAgent: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ userAgent, viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    await page.goto(demo.base);
    return { context, page };
  }

  async function logIn(page: Page, user: string, label: string): Promise<void> {
    await page.getByLabel('Name', { exact: true }).fill(user);
    await page.getByLabel('Device name (optional)').fill(label);
    await Promise.all([page.waitForURL(`${demo.base}/`), page.getByRole('button', { name: 'Log in' }).click()]);
    assert.equal(await page.locator('#user').textContent(), user);
  }

  async function shot(page: Page, name: string): Promise<void> {
    const file = join(shots, name);
    await page.screenshot({ path: file, fullPage: true });
    const png = readFileSync(file);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${name} is a PNG`);
  }

  it('lists the devices, keeps both concurrent writes, revokes a device and logs out everywhere', async () => {
    const laptop = await device(
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    );
    const phone = await device(
      'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1',
    );
    await shot(laptop.page, 'demo-login.png');
    await logIn(phone.page, 'ada', 'Phone');
    await logIn(laptop.page, 'ada', 'Work laptop');

    // Your devices: both sessions, with times, this one marked.
    const rows = laptop.page.locator('table tbody tr');
    assert.equal(await rows.count(), 2);
    assert.equal(await laptop.page.locator('#devices').textContent(), '2');
    const current = laptop.page.locator('tr.current');
    assert.match((await current.textContent()) ?? '', /Work laptop\s*This device/);
    assert.match((await current.textContent()) ?? '', /Chrome on Linux/);
    const other = rows.filter({ hasNotText: 'This device' });
    assert.match((await other.textContent()) ?? '', /Phone/);
    assert.match((await other.textContent()) ?? '', /Safari on iOS/);
    for (const column of ['Signed in', 'Last seen', 'Expires']) {
      assert.equal(await laptop.page.getByRole('columnheader', { name: column }).count(), 1);
    }
    assert.equal(await current.locator('time').count(), 3, 'created, last seen and expiry times');

    // The panel: two requests at once, each changing its own key: both are kept.
    await laptop.page.getByRole('button', { name: 'Send two requests' }).click();
    const result = laptop.page.locator('#race-result');
    await result.filter({ hasText: /kept|Lost/ }).waitFor();
    assert.match((await result.textContent()) ?? '', /^Both kept: left = left @ .+, right = right @ .+$/);
    await shot(laptop.page, 'demo-devices.png');

    // Revoke the phone from the laptop: the phone is logged out on its next request.
    await Promise.all([
      laptop.page.waitForURL(`${demo.base}/`),
      laptop.page.getByRole('button', { name: 'Revoke Phone' }).click(),
    ]);
    assert.equal(await laptop.page.locator('#notice').textContent(), 'Revoked Phone.');
    assert.equal(await rows.count(), 1);
    await phone.page.reload();
    assert.equal(await phone.page.getByRole('heading', { name: 'Log in' }).count(), 1, 'the phone is logged out');

    // Log in on the phone again, then log out everywhere from the laptop: both sessions end.
    await logIn(phone.page, 'ada', 'Phone');
    await laptop.page.reload();
    assert.equal(await rows.count(), 2);
    await Promise.all([
      laptop.page.waitForURL(/\/\?ended=2$/),
      laptop.page.getByRole('button', { name: 'Log out everywhere' }).click(),
    ]);
    assert.equal(await laptop.page.locator('#notice').textContent(), 'Logged out everywhere: 2 sessions ended.');
    await shot(laptop.page, 'demo-logged-out.png');
    await phone.page.reload();
    assert.equal(await phone.page.getByRole('heading', { name: 'Log in' }).count(), 1);
    await Promise.all([laptop.context.close(), phone.context.close()]);
  });
});
