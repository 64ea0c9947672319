// What the browser scenarios share: who logs in, where screenshots go, and small page actions.

import { expect, Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const admin = {
  login: process.env.ELSE_ADMIN_LOGIN ?? 'admin',
  password: process.env.ELSE_ADMIN_PASSWORD ?? '',
};

/** The real MX log of ../shared/corpora was imported too (server "helga", March 2023). */
export const corpus = process.env.ELSE_CORPUS === '1';

/** Screenshots of the main screens, for docs/screenshots (ELSE_SCREENSHOTS names the folder). */
export async function shot(page: Page, name: string) {
  const dir = process.env.ELSE_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  // The assertions before a shot say the screen is there; a moment without requests lets graphs
  // and frames finish, but a page that keeps a request open (a frame left behind by the
  // application's navigation) must not fail the scenario over a picture.
  await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => undefined);
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
}

export async function login(page: Page, user: string, password: string) {
  await page.goto('/');
  await page.getByLabel('Login', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
}

export async function logout(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
}

export async function quickSearch(page: Page, text: string) {
  await page.getByLabel('Quick search').fill(text);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/\/search\?q=/);
}

/** The rows of the table called `label` (header row excluded). */
export function rows(page: Page, label: string) {
  return page.getByRole('table', { name: label, exact: true }).locator('tbody tr');
}

/**
 * Waits until every row of `table` contains `text` and there is at least one row. The rows of the
 * previous listing stay on screen while the next one loads, so a snapshot taken right after a
 * click may still be the old listing: this retries until the new one is there.
 */
export async function expectEveryRow(table: ReturnType<typeof rows>, text: string) {
  await expect(table.first()).toBeVisible();
  await expect(table.filter({ hasNotText: text })).toHaveCount(0);
}

/** Bytes back from the application's `formatBytes` text ("1.2 kB"), for order checks. */
export function parseBytes(text: string): number {
  const match = /([\d.]+)\s*(B|kB|MB|GB|TB)/.exec(text);
  if (!match) return Number.NaN;
  const scale = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }[match[2] as 'B'];
  return Number(match[1]) * scale;
}
