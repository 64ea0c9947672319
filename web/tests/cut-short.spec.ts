// A search stopped at the server's time limit (`[web] search_time_limit_ms`, 2 s as shipped):
// elsed/tests/browser.rs runs the @locked scenarios while another session holds a partition of
// `messages` locked, so every message search waits until its limit and answers `cut_short`.

import { expect, test } from '@playwright/test';
import { admin } from './helpers';

test('@locked a search cut short at its time limit says so instead of "nothing found"', async ({ page }) => {
  // A deep link, then the login: no other screen's queries wait on the lock meanwhile.
  await page.goto('/search?sender=carol%40example.net');
  await page.getByLabel('Login', { exact: true }).fill(admin.login);
  await page.getByLabel('Password', { exact: true }).fill(admin.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  const notice = page.getByRole('alert').filter({ hasText: 'The search stopped at its time limit' });
  await expect(notice).toBeVisible();
  await expect(notice).toContainText('before finding a row');
  await expect(page.getByText('No message matches.')).toHaveCount(0);
});
