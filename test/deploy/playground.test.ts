/**
 * The playground page at / in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): it lists the models, shows the class field for a conditional model, and
 * displays a generated image, a style mixing grid and an animated WebP interpolation.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { convertFixture, makeTempDir, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

const chromiumPath = '/usr/bin/chromium';
const skipReason = existsSync(chromiumPath)
  ? false
  : `${chromiumPath} is missing; install Debian's chromium package (apt-get install chromium), as .ci/run does`;

/** Optional: a path to write a screenshot of the page after the checks, for a visual review. */
const screenshotPath = process.env.PLAYGROUND_SCREENSHOT;

/** The DOM members the in-page checks read, because the tsconfig has no DOM library. */
interface PageElement {
  src: string;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  options: { length: number };
  classList: { contains(name: string): boolean };
}
type PageGlobals = { document: { getElementById(id: string): PageElement } };

let modelsDir: string;
let userDataDir: string;
let server: TestServer;
let browser: BrowserContext;
let page: Page;

before(async () => {
  if (skipReason) return;
  modelsDir = await makeTempDir('deploy-playground');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl', 'tiny');
  await convertFixture(modelsDir, 'ada-cond-64', 'ada-cond-64.pkl', 'cond');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'cond' });
  userDataDir = await mkdtemp(join(tmpdir(), 'sgserve-chromium-'));
  // A persistent context on a fresh folder: Playwright passes it as --user-data-dir.
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    viewport: { width: 1100, height: 1300 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (modelsDir) await removeDir(modelsDir);
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

/** Clicks `button`, waits until `imageId` shows a decoded image and returns its natural size. */
async function clickForImage(button: string, imageId: string, statusId: string) {
  const previous = await page.locator(`#${imageId}`).getAttribute('src');
  await page.click(`#${button}`);
  await page.waitForFunction(
    ({ imageId, statusId, previous }) => {
      const { document } = globalThis as unknown as PageGlobals;
      const image = document.getElementById(imageId);
      const status = document.getElementById(statusId);
      return status.classList.contains('error') || (image.src !== '' && image.src !== previous && image.complete && image.naturalWidth > 0);
    },
    { imageId, statusId, previous },
    { timeout: 20_000 },
  );
  const status = await page.locator(`#${statusId}`).textContent();
  assert.equal(await page.locator(`#${statusId}`).getAttribute('class'), 'status', `request failed: ${status}`);
  return page.locator(`#${imageId}`).evaluate((image) => ({ width: image.naturalWidth, height: image.naturalHeight }));
}

test('playground generates, mixes and interpolates', { skip: skipReason }, async () => {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));

  const response = await page.goto(`${server.url}/`);
  assert.equal(response?.status(), 200);
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('model').options.length === 2);
  assert.equal(await page.locator('#model').inputValue(), 'cond');
  assert.equal(await page.locator('#class-field').isVisible(), true);
  assert.match((await page.locator('#model-info').textContent()) ?? '', /conditional on \d+ classes/);

  await page.fill('#seed', '7');
  await page.fill('#class', '1');
  await page.selectOption('#noise-mode', 'none');
  assert.deepEqual(await clickForImage('generate-button', 'generate-image', 'generate-status'), { width: 64, height: 64 });
  assert.match((await page.locator('#generate-status').textContent()) ?? '', /image\/png/);

  // 3 row seeds × 3 column seeds: a 4×4 grid of 64-pixel cells.
  assert.deepEqual(await clickForImage('mix-button', 'mix-image', 'mix-status'), { width: 256, height: 256 });

  await page.fill('#interpolate-frames', '3');
  assert.deepEqual(await clickForImage('interpolate-button', 'interpolate-image', 'interpolate-status'), { width: 64, height: 64 });
  assert.match((await page.locator('#interpolate-status').textContent()) ?? '', /image\/webp/);

  // The unconditional model hides the class field.
  await page.selectOption('#model', 'tiny');
  assert.equal(await page.locator('#class-field').isVisible(), false);
  assert.deepEqual(await clickForImage('generate-button', 'generate-image', 'generate-status'), { width: 32, height: 32 });

  // A request error shows the problem detail instead of an image.
  await page.fill('#seed', '-5');
  await page.click('#generate-button');
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('generate-status').classList.contains('error'));
  assert.match((await page.locator('#generate-status').textContent()) ?? '', /seed/);

  assert.deepEqual(errors, []);
  if (screenshotPath) {
    await page.selectOption('#model', 'cond');
    await page.fill('#seed', '7');
    await clickForImage('generate-button', 'generate-image', 'generate-status');
    await page.screenshot({ path: screenshotPath, fullPage: true });
  }
});
