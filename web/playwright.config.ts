import { defineConfig } from '@playwright/test';

// Browser tests of the web application against a real `elsed serve` (started, with its database
// filled by `elsed import`, by elsed/tests/browser.rs, which passes ELSE_BASE_URL and friends).
// They drive Debian's Chromium; Playwright never downloads a browser of its own.
export default defineConfig({
  testDir: 'tests',
  testMatch: '*.spec.ts',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  outputDir: process.env.ELSE_TEST_OUTPUT ?? 'test-results',
  use: {
    baseURL: process.env.ELSE_BASE_URL ?? 'http://127.0.0.1:8080',
    headless: true,
    viewport: { width: 1440, height: 900 },
    // Times are shown in the browser's zone; a fixed zone makes that checkable.
    timezoneId: 'Europe/Paris',
    locale: 'en-GB',
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.ELSE_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});
