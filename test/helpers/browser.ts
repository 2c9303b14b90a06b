/**
 * Headless Chromium for the browser tests: Debian's `chromium` (/usr/bin/chromium, or
 * LATCHKEY_CHROMIUM) driven by playwright-core, with the flags this closed network needs (no
 * background networking, no component updates, no sync) and a fresh profile per launch.
 *
 * `.ci/run` installs chromium when it is missing and sets LATCHKEY_REQUIRE_BROWSER=1, so in CI a
 * missing browser fails the suite; elsewhere the browser tests are skipped with a message saying why.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './root.js';

export const CHROMIUM_PATH = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** True when the browser tests can run here; logs why not otherwise. */
export function browserAvailable(): boolean {
  if (fs.existsSync(CHROMIUM_PATH)) return true;
  if (process.env.LATCHKEY_REQUIRE_BROWSER === '1') {
    throw new Error(`LATCHKEY_REQUIRE_BROWSER=1 but ${CHROMIUM_PATH} does not exist (apt-get install chromium)`);
  }
  process.stderr.write(`browser tests skipped: ${CHROMIUM_PATH} not found (apt-get install chromium; .ci/run does)\n`);
  return false;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Page console lines and page errors, for failure messages. */
  logs: string[];
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh user-data-dir and opens one page of the given viewport. */
export async function openBrowser(viewport = { width: 1280, height: 800 }): Promise<BrowserSession> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-chromium-'));
  // A persistent context is how playwright takes a user-data-dir of our choosing (a fresh one).
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    viewport,
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    logs,
    async close() {
      await context.close().catch(() => undefined);
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as test/artifacts/<name>.png (ignored by git). */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = path.join(ROOT, 'test/artifacts');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
