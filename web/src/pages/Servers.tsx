// Servers: the list the caller may see with their health, one server's samples over time, and for
// administrators the queue actions (each behind a confirmation) and the role/address editor.

import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import type { ActionAnswer, ActionRequest, AgentRequest, AgentSecrets, AgentSettings, DatabaseView, Samples, Server, UpdateServer } from '../api';
import { useAction, useApi } from '../hooks';
import { formatBytes, formatDuration, formatNumber, formatTime } from '../format';
import { isAdmin, useSession } from '../session';
import { TimeChart } from '../components/charts';
import { ConfirmDialog, DataTable, Empty, ErrorBox, Field, Loading, Section, StatusBadge } from '../components/ui';
import { StatsFilters, useStatsFilters } from './Stats';

export const ROLES = ['unknown', 'incoming', 'outgoing', 'both', 'relay', 'filter'];

export function ServersPage() {
  const { servers, me, reloadServers } = useSession();
  const [editing, setEditing] = useState<Server | null>(null);
  return (
    <div class="page">
      <h1>Servers</h1>
      <Section title="Servers" actions={<button type="button" onClick={reloadServers}>Refresh</button>}>
        {servers.length === 0 && <Empty>No server yet: servers register themselves from their first log line.</Empty>}
        {servers.length > 0 && (
          <DataTable
            label="Servers"
            rows={servers}
            rowKey={(s) => String(s.id)}
            columns={[
              { key: 'n', label: 'Name', render: (s) => <a href={`/servers/${s.id}`}>{s.name}</a> },
              { key: 'r', label: 'Role', render: (s) => s.role },
              { key: 'a', label: 'Address', class: 'mono', render: (s) => s.address ?? '' },
              { key: 'h', label: 'Health', render: (s) => <StatusBadge value={s.health?.state ?? 'unknown'} /> },
              { key: 'w', label: 'Why', render: (s) => s.health?.reason ?? '' },
              { key: 'qa', label: 'Active', class: 'num', render: (s) => formatNumber(s.health?.queues?.active) },
              { key: 'qd', label: 'Deferred', class: 'num', render: (s) => formatNumber(s.health?.queues?.deferred) },
              { key: 'qh', label: 'Hold', class: 'num', render: (s) => formatNumber(s.health?.queues?.hold) },
              { key: 'f', label: 'First seen', class: 'nowrap', render: (s) => formatTime(s.first_seen) },
              { key: 'l', label: 'Last seen', class: 'nowrap', render: (s) => formatTime(s.last_seen) },
              ...(isAdmin(me)
                ? [
                    {
                      key: 'e',
                      label: 'Edit',
                      render: (s: Server) => (
                        <button type="button" class="link" aria-label={`Edit ${s.name}`} onClick={() => setEditing(s)}>
                          edit
                        </button>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </Section>
      <ReadReplica />
      {editing && (
        <ServerEditor
          key={String(editing.id)}
          server={editing}
          done={() => {
            setEditing(null);
            reloadServers();
          }}
        />
      )}
    </div>
  );
}

/**
 * Where searches and reports read from: the read replica (`database.read_url`) and its lag. Why it
 * is skipped is for administrators only (the API gives others no `reason`: it can name the
 * standby's host or role), so the others read that it is not in use.
 */
function ReadReplica() {
  const { data, error, reload } = useApi<DatabaseView>('/database');
  if (error) return <ErrorBox error={error} />;
  const replica = data?.read_replica;
  if (!replica?.configured) return null;
  return (
    <Section title="Database" actions={<button type="button" onClick={reload}>Refresh</button>}>
      <p>
        Searches and reports read from the <strong>{data?.reads_from}</strong>
        {replica.lag_seconds != null && <> (read replica {replica.lag_seconds.toFixed(1)} s behind the primary, at most {replica.max_lag_seconds} s)</>}
        {replica.reason ? <> — read replica skipped: {replica.reason}</> : !replica.in_use && <> — read replica not in use</>}
      </p>
    </Section>
  );
}

function ServerEditor({ server, done }: { server: Server; done: () => void }) {
  const [role, setRole] = useState(server.role);
  const [address, setAddress] = useState(server.address ?? '');
  const [description, setDescription] = useState(server.description ?? '');
  const action = useAction();
  const save = async (e: Event) => {
    e.preventDefault();
    const r = await action.run(() =>
      api(`/admin/servers/${server.id}`, { method: 'PATCH', body: { role, address, description } satisfies UpdateServer }),
    );
    if (r.ok) done();
  };
  return (
    <Section title={`Edit server ${server.name}`} id="edit-server">
      <form class="filters" aria-label={`Edit server ${server.name}`} onSubmit={save}>
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {[...new Set([...ROLES, role])].map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Address">
          <input value={address} onInput={(e) => setAddress(e.currentTarget.value)} placeholder="192.0.2.10" />
        </Field>
        <Field label="Description" wide>
          <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </Field>
        <div class="buttons">
          <button type="submit" class="primary" disabled={action.busy}>
            Save
          </button>
          <button type="button" onClick={done}>
            Cancel
          </button>
        </div>
        <ErrorBox error={action.error} />
      </form>
    </Section>
  );
}

const QUEUES = ['incoming', 'active', 'deferred', 'hold'];
const ACTIONS: [string, string, boolean][] = [
  ['flush', 'Flush the queue (retry deferred mail now)', false],
  ['delete_deferred', 'Delete all deferred mail', false],
  ['hold', 'Put one message on hold', true],
  ['release', 'Release one message from hold', true],
  ['requeue', 'Requeue one message', true],
  ['delete', 'Delete one message', true],
];

export function ServerPage({ id }: { id: string }) {
  const { servers, me } = useSession();
  const server = servers.find((s) => String(s.id) === id);
  const filters = useStatsFilters();
  const samples = useApi<Samples>(`/servers/${encodeURIComponent(id)}/samples`, {
    since: filters.since,
    until: filters.until,
  });
  const items = samples.data?.items ?? [];
  const latest = items[items.length - 1];
  const times = items.map((s) => s.ts);
  return (
    <div class="page">
      <h1>Server {server?.name ?? id}</h1>
      <Section title="Health">
        <dl class="facts">
          <dt>Role</dt>
          <dd>{server?.role ?? ''}</dd>
          <dt>Address</dt>
          <dd class="mono">{server?.address ?? ''}</dd>
          <dt>State</dt>
          <dd>
            <StatusBadge value={server?.health?.state ?? 'unknown'} /> {server?.health?.reason ?? ''}
          </dd>
          <dt>Last sample</dt>
          <dd>{latest ? formatTime(latest.ts) : 'none'}</dd>
          {latest && (
            <>
              <dt>Reachable</dt>
              <dd>{latest.reachable ? 'yes' : 'no'}</dd>
              <dt>Postfix master</dt>
              <dd>{latest.master_alive === null ? 'unknown' : latest.master_alive ? 'running' : 'not running'}</dd>
              <dt>Sample state</dt>
              <dd>
                <StatusBadge value={latest.state} /> {[...latest.reasons, latest.error].filter(Boolean).join('; ')}
              </dd>
              <dt>Load</dt>
              <dd>{latest.load ?? ''}</dd>
              <dt>Spool disk</dt>
              <dd>{latest.spool_disk_pct !== null ? `${latest.spool_disk_pct} %` : ''}</dd>
              {QUEUES.map((q) => (
                <Fragment key={q}>
                  <dt>{q} queue</dt>
                  <dd>
                    {latest.queues[q]?.count ?? 0} messages, {formatBytes(latest.queues[q]?.bytes ?? 0)}
                    {latest.queues[q]?.oldest_age ? `, oldest ${formatDuration(latest.queues[q].oldest_age)}` : ''}
                  </dd>
                </Fragment>
              ))}
            </>
          )}
        </dl>
      </Section>
      <Section title="Samples">
        <StatsFilters presets />
        <ErrorBox error={samples.error} />
        <Loading when={samples.loading} />
        {samples.data && items.length === 0 && <Empty>No sample in this range (is the SNMP poller configured for this server?).</Empty>}
        {items.length > 0 && (
          <div class="grid2">
            <TimeChart
              title="Queue sizes"
              times={times}
              series={QUEUES.map((q) => ({ label: q, values: items.map((s) => s.queues[q]?.count ?? null) }))}
            />
            <TimeChart
              title="Load and spool disk"
              times={times}
              series={[
                { label: 'load', values: items.map((s) => s.load) },
                { label: 'spool disk %', values: items.map((s) => s.spool_disk_pct) },
              ]}
            />
          </div>
        )}
      </Section>
      {isAdmin(me) && <QueueActions id={id} name={server?.name ?? id} />}
      {isAdmin(me) && <AgentSettingsForm id={id} />}
    </div>
  );
}

function QueueActions({ id, name }: { id: string; name: string }) {
  const [chosen, setChosen] = useState('flush');
  const [queueId, setQueueId] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [answer, setAnswer] = useState<string | null>(null);
  const action = useAction();
  const spec = ACTIONS.find(([a]) => a === chosen)!;
  const needsQueueId = spec[2];
  const run = async () => {
    setConfirming(false);
    const r = await action.run(() =>
      api<ActionAnswer>(`/admin/servers/${encodeURIComponent(id)}/actions`, {
        method: 'POST',
        body: { action: chosen, queue_id: needsQueueId ? queueId : undefined, confirm: true } satisfies ActionRequest,
      }),
    );
    if (r.ok) setAnswer(`${r.value.result}${r.value.answer ? `: ${r.value.answer}` : ''}`);
  };
  return (
    <Section title="Queue actions">
      <form
        class="filters"
        aria-label="Queue action"
        onSubmit={(e) => {
          e.preventDefault();
          if (needsQueueId && !queueId.trim()) return action.setError('This action needs a queue id.');
          setConfirming(true);
        }}
      >
        <Field label="Action">
          <select value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
            {ACTIONS.map(([a, text]) => (
              <option key={a} value={a}>
                {text}
              </option>
            ))}
          </select>
        </Field>
        {needsQueueId && (
          <Field label="Queue id">
            <input value={queueId} onInput={(e) => setQueueId(e.currentTarget.value)} />
          </Field>
        )}
        <div class="buttons">
          <button type="submit" class="danger" disabled={action.busy}>
            Run…
          </button>
        </div>
      </form>
      <ErrorBox error={action.error} />
      {answer && (
        <p role="status" class="ok">
          Answer: <span class="mono">{answer}</span>
        </p>
      )}
      <ConfirmDialog open={confirming} title="Confirm queue action" confirmLabel="Run it" onConfirm={run} onCancel={() => setConfirming(false)}>
        <p>
          {spec[1]}
          {needsQueueId ? ` (${queueId})` : ''} on <strong>{name}</strong>. This changes the live mail queue and is audited.
        </p>
      </ConfirmDialog>
    </Section>
  );
}

const SECRETS_V3: [keyof AgentSecrets, string][] = [
  ['read_auth_pass', 'Read user auth passphrase'],
  ['read_priv_pass', 'Read user privacy passphrase'],
  ['control_auth_pass', 'Control user auth passphrase'],
  ['control_priv_pass', 'Control user privacy passphrase'],
];
// SNMPv2c polls only: elsed refuses a control community (queue actions need SNMPv3).
const SECRETS_V2: [keyof AgentSecrets, string][] = [['read_community', 'Read community']];

// The server's SNMP agent (administrators): the settings are shown, the secrets never are, so
// saving asks for them again; elsed stores them encrypted.
function AgentSettingsForm({ id }: { id: string }) {
  const current = useApi<AgentSettings>(`/admin/servers/${encodeURIComponent(id)}/snmp`);
  const known = current.data;
  const [form, setForm] = useState<AgentSettings | null>(null);
  const [secrets, setSecrets] = useState<AgentSecrets>({});
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const shown: AgentSettings = form ??
    known ?? { enabled: true, host: '', port: 161, version: '3', read_user: 'else-ro', control_user: 'else-ctl', auth_protocol: 'SHA' };
  const set = (patch: Partial<AgentSettings>) => setForm({ ...shown, ...patch });
  const fields = shown.version === '3' ? SECRETS_V3 : SECRETS_V2;
  const save = async () => {
    setSaved(false);
    const chosen: AgentSecrets = {};
    for (const [key] of fields) if (secrets[key]) chosen[key] = secrets[key];
    const body: AgentRequest = { settings: shown, secrets: chosen };
    const r = await action.run(() => api<AgentSettings>(`/admin/servers/${encodeURIComponent(id)}/snmp`, { method: 'PUT', body }));
    if (r.ok) {
      setSaved(true);
      setSecrets({});
    }
  };
  return (
    <Section title="SNMP agent">
      {!known && !current.loading && <p>No agent set for this server yet.</p>}
      <form
        class="filters"
        aria-label="SNMP agent"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Field label="Enabled">
          <input type="checkbox" checked={shown.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
        </Field>
        <Field label="Agent host">
          <input value={shown.host} onInput={(e) => set({ host: e.currentTarget.value })} />
        </Field>
        <Field label="Agent port">
          <input type="number" value={shown.port} onInput={(e) => set({ port: Number(e.currentTarget.value) })} />
        </Field>
        <Field label="SNMP version">
          <select value={shown.version} onChange={(e) => set({ version: e.currentTarget.value })}>
            <option value="3">3 (authPriv)</option>
            <option value="2c">2c (polling only)</option>
          </select>
        </Field>
        {shown.version === '3' && (
          <>
            <Field label="Read user">
              <input value={shown.read_user ?? ''} onInput={(e) => set({ read_user: e.currentTarget.value })} />
            </Field>
            <Field label="Control user">
              <input value={shown.control_user ?? ''} onInput={(e) => set({ control_user: e.currentTarget.value })} />
            </Field>
            <Field label="Auth protocol">
              <select value={shown.auth_protocol} onChange={(e) => set({ auth_protocol: e.currentTarget.value })}>
                <option value="SHA">SHA</option>
                <option value="SHA-256">SHA-256</option>
              </select>
            </Field>
          </>
        )}
        {fields.map(([key, label]) => (
          <Field key={key} label={label}>
            <input
              type="password"
              autocomplete="new-password"
              value={secrets[key] ?? ''}
              onInput={(e) => setSecrets({ ...secrets, [key]: e.currentTarget.value })}
            />
          </Field>
        ))}
        <div class="buttons">
          <button type="submit" disabled={action.busy}>
            Save agent
          </button>
        </div>
      </form>
      <ErrorBox error={action.error} />
      {saved && (
        <p role="status" class="ok">
          Saved; the poller uses it from its next cycle.
        </p>
      )}
    </Section>
  );
}
