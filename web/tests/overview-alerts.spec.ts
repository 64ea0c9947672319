// The landing page and the alerts (issue 20): the overview shows the open alert and the servers
// with their queues; the alert list leads to the alert's evidence and history, where an
// administrator acknowledges then silences it (both in the history and the audit log).
//
// Data (elsed/tests/browser.rs): out1 has an SNMP agent whose latest sample counts 700 deferred
// messages; `elsed serve`'s evaluator found it at its first cycle and opened a real `queue` alert.

import { expect, test } from '@playwright/test';
import { admin, login, rows, shot } from './helpers';

const ALERT = "out1's deferred queue holds 700 messages (threshold 500)";

test.describe.configure({ mode: 'serial' });

test('the overview is the landing page: the open alert and the servers with their queues', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await expect(rows(page, 'Open alerts').filter({ hasText: ALERT })).toHaveCount(1);
  await expect(page.getByRole('region', { name: 'Open alerts' })).toContainText('1 warning');
  const servers = rows(page, 'Servers');
  await expect(servers.filter({ hasText: 'mx1' })).toHaveCount(1);
  const out1 = servers.filter({ hasText: 'out1' });
  await expect(out1).toContainText('warning');
  await expect(out1).toContainText('700');
  await expect(out1).toContainText('2024-03-14');
  await expect(page.getByRole('alert')).toHaveCount(0);
  // The message search stays one click away.
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Messages' })).toBeVisible();
  await shot(page, 'overview');

  // The servers list shows the queue sizes too.
  await nav.getByRole('link', { name: 'Servers', exact: true }).click();
  const listed = rows(page, 'Servers').filter({ hasText: 'out1' });
  await expect(listed).toContainText('700');
});

test('alert list, detail with evidence and history, acknowledge, silence', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Alerts', level: 1 })).toBeVisible();
  const alert = rows(page, 'Alerts').filter({ hasText: ALERT });
  await expect(alert).toHaveCount(1);
  await shot(page, 'alerts');
  await page.getByLabel('Show').selectOption('resolved');
  await expect(page.getByText('No alert.')).toBeVisible();
  await page.getByLabel('Show').selectOption('open');
  await alert.getByRole('link', { name: ALERT }).click();
  await page.waitForURL(/\/alerts\/\d+$/);

  await expect(page.getByRole('heading', { level: 1 })).toContainText(ALERT);
  const evidence = page.getByRole('region', { name: 'Evidence' });
  await expect(evidence).toContainText('700');
  await expect(evidence.getByRole('link', { name: 'the server' })).toHaveAttribute('href', /^\/servers\/\d+$/);
  await expect(rows(page, 'History').first()).toContainText('opened');

  await page.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(page.getByTestId('acknowledged')).toContainText(`by ${admin.login}`);
  await expect(page.getByRole('button', { name: 'Acknowledge' })).toHaveCount(0);
  await page.getByLabel('Silence for (minutes)').fill('90');
  await page.getByRole('button', { name: 'Silence', exact: true }).click();
  await expect(page.getByTestId('silenced')).toContainText('until');
  const history = rows(page, 'History');
  await expect(history.filter({ hasText: 'acknowledged' })).toContainText(admin.login);
  await expect(history.filter({ hasText: 'silenced' })).toContainText(admin.login);
  await expect(page.getByRole('alert')).toHaveCount(0);
  await shot(page, 'alert');

  const audit = await (await page.request.get('/api/v1/admin/audit?per_page=100')).json();
  const actions = audit.items.map((e: { action: string }) => e.action);
  expect(actions).toContain('alert.acknowledge');
  expect(actions).toContain('alert.silence');
});
