/** The browser harness itself: headless Chromium starts from test/helpers/browser.ts and renders a page. */
import { describe, expect, it } from 'vitest';
import { browserAvailable, openBrowser } from '../helpers/browser.js';

describe.runIf(browserAvailable())('headless chromium', () => {
  it('renders a page and runs its script', async () => {
    const b = await openBrowser();
    try {
      await b.page.setContent('<p id="out"></p><script>document.getElementById("out").textContent = String(6 * 7)</script>');
      expect(await b.page.textContent('#out')).toBe('42');
    } finally {
      await b.close();
    }
  }, 60_000);
});
