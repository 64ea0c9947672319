// NDRs and greylisting: the pages load their data without error, and an
// administrator adds then removes a greylisting whitelist entry (behind a confirmation).

import { expect, test } from '@playwright/test';
import { admin, login, rows, shot } from './helpers';

test('NDR and greylisting pages; the whitelist is edited by an administrator', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('link', { name: 'NDRs' }).click();
  await expect(page.getByRole('heading', { name: 'Non-delivery reports' })).toBeVisible();
  await expect(page.getByText('No NDR matches.').or(page.getByRole('table', { name: 'NDRs' }))).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);

  // Greylisting: the outcomes, and an administrator's whitelist entry added then removed.
  await page.getByRole('link', { name: 'Greylisting' }).click();
  await expect(page.getByRole('table', { name: 'Greylisting totals' })).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
  const add = page.getByRole('form', { name: 'Add to whitelist' });
  await add.getByLabel('Kind').selectOption('client');
  await add.getByLabel('Value').fill('192.0.2.99');
  await add.getByLabel('Comment').fill('browser test');
  await add.getByRole('button', { name: 'Add' }).click();
  const whitelist = rows(page, 'Whitelist').filter({ hasText: '192.0.2.99' });
  await expect(whitelist).toHaveCount(1);
  await shot(page, 'greylisting');
  await whitelist.getByRole('button', { name: 'Remove 192.0.2.99' }).click();
  const confirm = page.getByRole('dialog', { name: 'Remove from the whitelist' });
  await confirm.getByRole('button', { name: 'Remove' }).click();
  await expect(whitelist).toHaveCount(0);
});
