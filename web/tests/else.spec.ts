// The acceptance scenarios of the web application (issue 4 and the dashboard of issue 5), in order:
// an administrator searches by every mode, follows a message across two servers, exports CSV,
// reads the dashboard, and sets up a group user and an end user, who then see only their part.
//
// Data: tests/fixtures/mail.log imported in UTC (servers mx1 and out1, 14 March 2024), and when
// ../shared/corpora exists the real MX log of postfix-logsums (server helga, March 2023).

import { expect, test } from '@playwright/test';
import * as fs from 'node:fs';
import { admin, corpus, expectEveryRow, login, logout, parseBytes, quickSearch, rows, shot } from './helpers';

// From tests/fixtures/mail.log.
const OUTGOING = '5f1c2a9e-77b3-4e0a-9d41-0c6b8e2f1a33@example.com'; // out1 4ZdQ7k1Rc2z9Hw -> mx1 9C0A1B2D3E
const INCOMING = '20240314100005.GA4411@mail.example.net'; // mx1 3A1F42C0D1 -> content filter -> 7B2E19A4F3
const BOUNCED = '20240314102000.4ZdQ9m3Tf5zK2L@out1.example.com';
const FIXTURE_DAY = { since: '2024-03-14T00:00:00Z', until: '2024-03-15T00:00:00Z' };
const CORPUS_DAYS = { since: '2023-03-13T00:00:00Z', until: '2023-03-17T00:00:00Z' };

const GROUP_USER = { login: 'grace', password: 'grace-first-password' };
const END_USER = { login: 'dana', password: 'dana-first-password', address: 'dave@example.com' };
const NEW_PASSWORD = 'grace-second-password';

test.describe.configure({ mode: 'serial' });

/** The id of the message an admin finds for a Message-ID, to try later as other users. */
let incomingId = '';

test('the login page renders and refuses a wrong password', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('form', { name: 'Log in' })).toBeVisible();
  await expect(page.getByLabel('Login', { exact: true })).toBeVisible();
  // A first visit: no session began, so none ended.
  await expect(page.getByText('Your session ended')).toHaveCount(0);
  await shot(page, 'login');
  await page.getByLabel('Login', { exact: true }).fill(admin.login);
  await page.getByLabel('Password', { exact: true }).fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
});

test('a deep link survives the login and loads directly', async ({ page }) => {
  await page.goto(`/search?sender=carol%40example.net`);
  await page.getByLabel('Login', { exact: true }).fill(admin.login);
  await page.getByLabel('Password', { exact: true }).fill(admin.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(rows(page, 'Messages').first()).toContainText('carol@example.net');
});

test('quick search by Message-ID shows the journey across two servers', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await quickSearch(page, `<${OUTGOING}>`);
  const results = rows(page, 'Messages');
  await expect(results.first()).toBeVisible();
  await expect(results.first()).toContainText('alice@example.com');
  await results.first().getByRole('link').first().click();
  await page.waitForURL(/\/messages\//);

  const hops = page.getByRole('list', { name: 'Journey' }).locator('li.hop');
  await expect(hops).toHaveCount(2);
  const journey = page.getByRole('list', { name: 'Journey' });
  await expect(journey).toContainText('out1');
  await expect(journey).toContainText('4ZdQ7k1Rc2z9Hw');
  await expect(journey).toContainText('mx1');
  await expect(journey).toContainText('9C0A1B2D3E');
  // Per recipient: the deferral then the delivery to frank, with the remote reply.
  await expect(journey).toContainText('frank@example.org');
  await expect(journey).toContainText('450 4.7.1');
  // The lines of both hops, and times in the browser's zone (UTC 10:05:02 is 11:05:02 in Paris).
  await expect(rows(page, 'Raw log lines').filter({ hasText: 'out1' }).first()).toBeVisible();
  await expect(rows(page, 'Raw log lines').filter({ hasText: '9C0A1B2D3E' }).first()).toBeVisible();
  await expect(page.getByRole('main')).toContainText('2024-03-14 11:05:0');
  await shot(page, 'message');
});

test('quick search by queue id follows the content filter', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await quickSearch(page, '3A1F42C0D1');
  await expect(rows(page, 'Messages').first()).toContainText('carol@example.net');
  await rows(page, 'Messages').first().getByRole('link').first().click();
  await page.waitForURL(/\/messages\//);
  incomingId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop() ?? '');
  const journey = page.getByRole('list', { name: 'Journey' });
  await expect(journey).toContainText('3A1F42C0D1');
  await expect(journey).toContainText('7B2E19A4F3');
  await expect(journey).toContainText('dave@example.com');
});

test('extended search with operators, sorting, permalink and CSV export', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  const form = page.getByRole('form', { name: 'Extended search' });
  await form.getByLabel('Sender operator').selectOption('contains');
  await form.getByLabel('Sender', { exact: true }).fill('carol');
  await form.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/sender=carol/);
  expect(page.url()).toContain('sender_op=contains');
  const results = rows(page, 'Messages');
  await expectEveryRow(results, 'carol@example.net');

  // The whole domain, then sorted by size on the server.
  await form.getByLabel('Sender operator').selectOption('is');
  await form.getByLabel('Sender', { exact: true }).fill('@example.com');
  await form.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/sender=%40example.com/);
  await expectEveryRow(results, '@example.com');
  await page.getByRole('button', { name: 'Size' }).click();
  await page.waitForURL(/sort=-size/);
  const sizeHeader = page.getByRole('columnheader', { name: /Size/ });
  await expect(sizeHeader).toHaveAttribute('aria-sort', 'descending');
  // The sorted listing has arrived when the sizes read largest first.
  const sizeColumn = (await sizeHeader.evaluate((th) => (th as HTMLTableCellElement).cellIndex)) + 1;
  await expect
    .poll(async () => {
      const sizes = (await results.locator(`td:nth-child(${sizeColumn})`).allTextContents()).map(parseBytes);
      return sizes.length > 1 && sizes.every((size, i) => i === 0 || size <= sizes[i - 1]);
    })
    .toBe(true);
  await shot(page, 'search');

  // The permalink is the page's URL: loading it again gives the same rows.
  const first = (await results.first().textContent()) ?? '';
  await page.reload();
  await expect(results.first()).toHaveText(first);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export CSV' }).click(),
  ]);
  const csv = fs.readFileSync((await download.path())!, 'utf8');
  const lines = csv.trim().split(/\r?\n/);
  expect(lines[0]).toMatch(/sender/);
  expect(lines.length).toBeGreaterThan(1);
  expect(csv).toContain('alice@example.com');
  expect(csv).not.toContain('carol@example.net');
});

test('mail refused before it was queued is found in the message search, marked as refused', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('link', { name: 'Messages', exact: true }).click();
  const form = page.getByRole('form', { name: 'Extended search' });
  await form.getByLabel('Recipient', { exact: true }).fill('nobody@example.com');
  await form.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/recipient=nobody/);
  const results = rows(page, 'Messages');
  await expect(results).toHaveCount(1);
  const refused = results.first();
  await expect(refused).toContainText('NOQUEUE');
  await expect(refused).toContainText('rejected');
  await expect(refused).toContainText('refused (RCPT)');
  await expect(refused).toContainText('550 5.1.1');
  await expect(refused).toContainText('User unknown');
  await expect(refused).toContainText('promo@spam.example.org');
  await expect(refused).toContainText('203.0.113.77');
  // Nothing to open: the row is all there is.
  await expect(refused.getByRole('link')).toHaveCount(0);

  // The status filter finds it among the fixture's day, between messages.
  await page.goto(`/search?status=rejected&since=${FIXTURE_DAY.since}&until=${FIXTURE_DAY.until}`);
  await expect(results.filter({ hasText: 'nobody@example.com' })).toHaveCount(1);
  await page.goto(`/search?since=${FIXTURE_DAY.since}&until=${FIXTURE_DAY.until}`);
  await expect(results.filter({ hasText: 'NOQUEUE' })).toHaveCount(1);
  await expect(results.filter({ hasText: 'carol@example.net' }).first()).toBeVisible();
  await shot(page, 'search-refused');
});

test('search results show the country of a located client', async ({ page }) => {
  test.skip(!corpus, 'the fixture has documentation addresses only; the corpus has real clients');
  await login(page, admin.login, admin.password);
  const answer = await page.request.get('/api/v1/messages?per_page=200');
  const placed = (await answer.json()).items.find((m: { client_country?: string }) => m.client_country);
  expect(placed, 'a message whose client the GeoIP database places').toBeTruthy();
  await page.goto(`/search?client=${encodeURIComponent(placed.client_ip)}`);
  await expect(rows(page, 'Messages').first()).toContainText(`[${placed.client_ip}] ${placed.client_country}`);
});

test('rejects, bulk search and history', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('link', { name: 'Rejects' }).click();
  const form = page.getByRole('form', { name: 'Reject search' });
  await form.getByLabel('Client', { exact: true }).fill('203.0.113.77');
  await form.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/client=203.0.113.77/);
  const rejects = rows(page, 'Rejects');
  await expect(rejects.first()).toContainText('nobody@example.com');
  await expect(rejects.first()).toContainText('550');
  await shot(page, 'rejects');

  await page.getByRole('link', { name: 'Bulk search' }).click();
  await page
    .getByLabel('Message-IDs, one per line')
    .fill([`<${INCOMING}>`, BOUNCED, '<no-such-message@nowhere.invalid>'].join('\n'));
  await page.getByRole('form', { name: 'Bulk search' }).getByRole('button', { name: 'Search' }).click();
  const found = page.getByRole('region', { name: /Results:/ });
  await expect(found).toContainText('1 not found');
  await expect(rows(page, 'Messages').filter({ hasText: 'carol@example.net' }).first()).toBeVisible();
  await expect(rows(page, 'Messages').filter({ hasText: 'gone@example.org' }).first()).toBeVisible();

  await page.getByRole('link', { name: 'History' }).click();
  const history = rows(page, 'Search history');
  await expect(history.first()).toBeVisible();
  await expect(page.getByRole('table', { name: 'Search history' })).toContainText('203.0.113.77');
  await expect(page.getByRole('table', { name: 'Search history' })).toContainText('carol');
  await shot(page, 'history');
});

test('logs and live view', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.getByRole('link', { name: 'Logs' }).click();
  const form = page.getByRole('form', { name: 'Log search' });
  await form.getByLabel('Text').fill('NOQUEUE: reject');
  await form.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=NOQUEUE/);
  const lines = rows(page, 'Log lines');
  await expectEveryRow(lines, 'NOQUEUE: reject');
  await shot(page, 'logs');

  await page.getByRole('link', { name: 'Live' }).click();
  await expect(rows(page, 'Live events').first()).toBeVisible();
  await shot(page, 'live');
});

test('the dashboard shows the traffic graphs with the report totals', async ({ page }) => {
  await login(page, admin.login, admin.password);
  const range = corpus ? CORPUS_DAYS : FIXTURE_DAY;
  await page.goto(`/stats?since=${range.since}&until=${range.until}`);
  const totals = page.getByRole('table', { name: 'Traffic totals' });
  await expect(totals).toBeVisible();
  const api = await (await page.request.get(`/api/v1/stats/traffic?since=${range.since}&until=${range.until}`)).json();
  const cells = totals.locator('tbody td');
  await expect(cells.nth(0)).toHaveText(Number(api.totals.received).toLocaleString('en-GB'));
  await expect(cells.nth(1)).toHaveText(Number(api.totals.delivered).toLocaleString('en-GB'));
  expect(Number(api.totals.received)).toBeGreaterThan(0);
  // The same totals as `elsed report` (pflogsumm's definitions) over the same range.
  const report = JSON.parse(process.env[corpus ? 'ELSE_REPORT_CORPUS' : 'ELSE_REPORT_FIXTURE'] ?? '{}');
  if (report.grand_totals) {
    expect(Number(api.totals.received)).toBe(report.grand_totals.received);
    expect(Number(api.totals.delivered)).toBe(report.grand_totals.delivered);
  }
  await expect(page.getByRole('img', { name: /Messages per/ }).locator('canvas').first()).toBeVisible();
  await expect(page.getByRole('table', { name: /Top senders/ })).toBeVisible();
  await shot(page, 'statistics');
});

test('reports and servers render; queue actions ask first', async ({ page }) => {
  await login(page, admin.login, admin.password);
  await page.goto(`/reports?since=${FIXTURE_DAY.since}&until=${FIXTURE_DAY.until}`);
  // The report in its frame, with its own styles (the API lets the application frame it).
  const report = page.frameLocator('iframe[title="Report"]');
  await expect(report.locator('body')).toContainText(/received/i);
  await expect(report.locator('table').first()).toHaveCSS('border-collapse', 'collapse');
  await expect(report.locator('td').first()).toHaveCSS('border-top-style', 'solid');
  await shot(page, 'report');

  await page.getByRole('link', { name: 'Servers', exact: true }).click();
  const servers = rows(page, 'Servers');
  await expect(servers.filter({ hasText: 'mx1' })).toHaveCount(1);
  await expect(servers.filter({ hasText: 'out1' })).toHaveCount(1);
  // elsed serve was given the primary itself as its read replica: skipped, and the page says why.
  const database = page.getByRole('region', { name: 'Database' });
  await expect(database).toContainText('Searches and reports read from the primary');
  await expect(database).toContainText('read replica skipped: not a standby');
  await shot(page, 'servers');
  await servers.filter({ hasText: 'mx1' }).getByRole('link', { name: 'mx1' }).click();
  await page.waitForURL(/\/servers\//);
  // No SNMP agent in this test: the health API answers, with no sample.
  await expect(page.getByText(/No sample in this range/)).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
  const actions = page.getByRole('form', { name: 'Queue action' });
  await actions.getByLabel('Action').selectOption('delete_deferred');
  await actions.getByRole('button', { name: /Run/ }).click();
  const dialog = page.getByRole('dialog', { name: 'Confirm queue action' });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText('Delete all deferred mail');
  await shot(page, 'server-action');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();

  // The SNMP agent form: this elsed has no snmp.key_file, so saving says why it cannot.
  await expect(page.getByText('No agent set for this server yet.')).toBeVisible();
  const agent = page.getByRole('form', { name: 'SNMP agent' });
  await agent.getByLabel('Agent host').fill('192.0.2.10');
  for (const label of [
    'Read user auth passphrase',
    'Read user privacy passphrase',
    'Control user auth passphrase',
    'Control user privacy passphrase',
  ]) {
    await agent.getByLabel(label).fill('a long passphrase');
  }
  await agent.getByRole('button', { name: 'Save agent' }).click();
  await expect(page.getByRole('alert')).toContainText('snmp.key_file');
});

test('an administrator sets up a group and its users', async ({ page }) => {
  await login(page, admin.login, admin.password);
  // A server's role is edited from the server list.
  await page.getByRole('link', { name: 'Servers', exact: true }).click();
  await page.getByRole('button', { name: 'Edit out1' }).click();
  await page.getByRole('form', { name: 'Edit server out1' }).getByLabel('Role').selectOption('outgoing');
  await page.getByRole('form', { name: 'Edit server out1' }).getByRole('button', { name: 'Save' }).click();
  await expect(rows(page, 'Servers').filter({ hasText: 'out1' })).toContainText('outgoing');

  await page.getByRole('link', { name: 'Groups' }).click();
  await page.getByRole('button', { name: 'New group' }).click();
  const groupForm = page.getByRole('form', { name: 'New group' });
  await groupForm.getByLabel('Group name').fill('outgoing team');
  await groupForm.getByLabel('Domains (one per line)').fill('example.org');
  await groupForm.getByRole('group', { name: 'Servers' }).getByLabel('out1').check();
  await groupForm.getByRole('button', { name: 'Create' }).click();
  await expect(rows(page, 'Groups').filter({ hasText: 'outgoing team' })).toContainText('out1');
  await shot(page, 'admin-groups');

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('button', { name: 'New user' }).click();
  let form = page.getByRole('form', { name: 'New user' });
  await form.getByLabel('Login').fill(GROUP_USER.login);
  await form.getByLabel('Role').selectOption('user');
  await form.getByLabel('Password').fill(GROUP_USER.password);
  await form.getByRole('group', { name: 'Groups' }).getByLabel('outgoing team').check();
  await form.getByRole('button', { name: 'Create' }).click();
  await expect(rows(page, 'Users').filter({ hasText: GROUP_USER.login })).toContainText('outgoing team');

  await page.getByRole('button', { name: 'New user' }).click();
  form = page.getByRole('form', { name: 'New user' });
  await form.getByLabel('Login').fill(END_USER.login);
  await form.getByLabel('Role').selectOption('enduser');
  await form.getByLabel('Password').fill(END_USER.password);
  await form.getByLabel('Mail addresses (one per line)').fill(END_USER.address);
  await form.getByRole('button', { name: 'Create' }).click();
  await expect(rows(page, 'Users').filter({ hasText: END_USER.login })).toContainText(END_USER.address);
  await shot(page, 'admin-users');

  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('table', { name: 'Audit log' })).toContainText(GROUP_USER.login);
});

test('a group user sees only what touches their servers and domains', async ({ page }) => {
  await login(page, GROUP_USER.login, GROUP_USER.password);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' })).toHaveCount(0);
  // Before any filter, the search page lists the newest messages in scope, not another group's.
  await page.goto('/search');
  await expect(page.getByText('Newest messages').first()).toBeVisible();
  await expect(rows(page, 'Messages').filter({ hasText: 'alice@example.com' }).first()).toBeVisible();
  await expect(rows(page, 'Messages').filter({ hasText: 'carol@example.net' })).toHaveCount(0);
  await quickSearch(page, OUTGOING);
  await expect(rows(page, 'Messages').first()).toContainText('alice@example.com');
  await quickSearch(page, INCOMING);
  await expect(page.getByText('No message matches.')).toBeVisible();
  // Guessing the id of a message outside the scope shows nothing either.
  expect(incomingId).not.toBe('');
  await page.goto(`/messages/${encodeURIComponent(incomingId)}`);
  await expect(page.getByRole('alert')).toContainText(/not found/i);
  const direct = await page.request.get(`/api/v1/messages/${encodeURIComponent(incomingId)}`);
  expect(direct.status()).toBe(404);
  // Admin pages are refused by the server, not just hidden.
  expect((await page.request.get('/api/v1/admin/users')).status()).toBe(403);
  await page.goto('/servers');
  await expect(rows(page, 'Servers').filter({ hasText: 'out1' })).toHaveCount(1);
  await expect(rows(page, 'Servers').filter({ hasText: 'mx1' })).toHaveCount(0);
  // Where searches read from, not why the read replica is skipped (the administrator's view).
  const database = page.getByRole('region', { name: 'Database' });
  await expect(database).toContainText('Searches and reports read from the primary — read replica not in use');
  await expect(database).not.toContainText('not a standby');
});

test('a user changes their password, logs out, and only the new one works', async ({ page }) => {
  await login(page, GROUP_USER.login, GROUP_USER.password);
  await page.getByRole('link', { name: 'Account and password' }).click();
  const form = page.getByRole('form', { name: 'Change password' });
  await form.getByLabel('Current password').fill(GROUP_USER.password);
  await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await form.getByLabel('New password again').fill(NEW_PASSWORD);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Password changed' })).toBeVisible();
  await shot(page, 'account');
  await logout(page);
  expect((await page.request.get('/api/v1/auth/me')).status()).toBe(401);

  await page.getByLabel('Login', { exact: true }).fill(GROUP_USER.login);
  await page.getByLabel('Password', { exact: true }).fill(GROUP_USER.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await login(page, GROUP_USER.login, NEW_PASSWORD);
});

test('an end user sees only mail from or to their address', async ({ page }) => {
  await login(page, END_USER.login, END_USER.password);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Logs' })).toHaveCount(0);
  await quickSearch(page, INCOMING);
  await expect(rows(page, 'Messages').first()).toContainText('carol@example.net');
  await quickSearch(page, OUTGOING);
  await expect(page.getByText('No message matches.')).toBeVisible();
  // Everything they can find involves their address, on screen and through the API.
  await page.goto(`/search?since=${FIXTURE_DAY.since}&until=${FIXTURE_DAY.until}`);
  await expect(rows(page, 'Messages').first()).toBeVisible();
  await shot(page, 'enduser-search');
  const answer = await (
    await page.request.get(`/api/v1/messages?since=${FIXTURE_DAY.since}&until=${FIXTURE_DAY.until}&per_page=500`)
  ).json();
  expect(answer.items.length).toBeGreaterThan(0);
  for (const m of answer.items) {
    const addresses = [m.sender, ...(m.recipients ?? []).map((r: { address: string }) => r.address)];
    expect(addresses).toContain(END_USER.address);
  }
  await logout(page);
});
