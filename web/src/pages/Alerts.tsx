// Alerts (docs/alerts.md): the list the caller may see (open first, filter open/resolved/all), and
// one alert with its evidence (counts, remote replies, links to the messages) and its history,
// with the acknowledge and silence buttons. The server decides who may see and act on an alert
// (an alert outside the caller's scope is 404); the buttons are shown to those who see it.

import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api';
import type { Alert, AlertDetail, SilenceRequest } from '../api';
import { useAction, useApi } from '../hooks';
import { formatTime } from '../format';
import { useUrlQuery } from '../urlstate';
import { DataTable, Empty, ErrorBox, Loading, Section, StatusBadge } from '../components/ui';

export const ALERT_STATES = ['open', 'resolved', 'all'];

/** Alerts as a table: severity, what, where, since when, who handles it. */
export function AlertTable({ rows, label = 'Alerts' }: { rows: Alert[]; label?: string }) {
  return (
    <DataTable
      label={label}
      rows={rows}
      rowKey={(a) => String(a.id)}
      columns={[
        { key: 's', label: 'Severity', render: (a) => <StatusBadge value={a.severity} /> },
        { key: 't', label: 'Alert', render: (a) => <a href={`/alerts/${a.id}`}>{a.title}</a> },
        { key: 'r', label: 'Rule', class: 'mono', render: (a) => a.rule },
        { key: 'v', label: 'Server', render: (a) => a.server ?? '' },
        { key: 'o', label: 'Opened', class: 'nowrap', render: (a) => formatTime(a.opened_at) },
        { key: 'e', label: 'State', render: (a) => <StatusBadge value={a.state} /> },
        { key: 'h', label: 'Handling', render: (a) => handling(a) },
      ]}
    />
  );
}

function handling(a: Alert): string {
  const words: string[] = [];
  if (a.acknowledged_by) words.push(`acknowledged by ${a.acknowledged_by}`);
  if (a.silenced_until && new Date(a.silenced_until) > new Date()) words.push(`silenced until ${formatTime(a.silenced_until)}`);
  return words.join('; ');
}

export function AlertsPage() {
  const { query, patch } = useUrlQuery();
  const state = ALERT_STATES.includes(query.state ?? '') ? query.state! : 'open';
  const { data, error, loading, reload } = useApi<Alert[]>('/alerts', { state });
  return (
    <div class="page">
      <h1>Alerts</h1>
      <Section
        title={state === 'all' ? 'All alerts' : state === 'resolved' ? 'Resolved alerts' : 'Open alerts'}
        actions={
          <>
            <label>
              Show{' '}
              <select aria-label="Show" value={state} onChange={(e) => patch({ state: e.currentTarget.value })}>
                {ALERT_STATES.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" onClick={reload}>
              Refresh
            </button>
          </>
        }
      >
        <ErrorBox error={error} />
        <Loading when={loading && !data} />
        {data && data.length === 0 && <Empty>{state === 'open' ? 'No open alert: all is well.' : 'No alert.'}</Empty>}
        {data && data.length > 0 && <AlertTable rows={data} />}
      </Section>
    </div>
  );
}

/** A value of the evidence: links to the application as links, the rest as text. */
function EvidenceValue({ value }: { value: unknown }) {
  if (typeof value === 'string' && value.startsWith('/')) return <a href={value}>{linkLabel(value)}</a>;
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) return <span class="mono">{value.join(', ')}</span>;
    return (
      <ul class="evidence-list">
        {value.map((v, i) => (
          <li key={i}>
            <EvidenceValue value={v} />
          </li>
        ))}
      </ul>
    );
  }
  if (value !== null && typeof value === 'object') {
    return (
      <dl class="facts">
        {Object.entries(value as Record<string, unknown>).map(([k, v]) => (
          <Fragment key={k}>
            <dt>{k.replace(/_/g, ' ')}</dt>
            <dd>
              <EvidenceValue value={v} />
            </dd>
          </Fragment>
        ))}
      </dl>
    );
  }
  return <span>{value === null || value === undefined ? '' : String(value)}</span>;
}

function linkLabel(href: string): string {
  if (href.startsWith('/search')) return 'the messages';
  if (href.startsWith('/logs')) return 'the log lines';
  if (href.startsWith('/servers')) return 'the server';
  return href;
}

export function AlertPage({ id }: { id: string }) {
  const { data, error, loading, reload } = useApi<AlertDetail>(`/alerts/${encodeURIComponent(id)}`);
  const action = useAction();
  const [minutes, setMinutes] = useState('60');
  const act = async (path: string, body: unknown) => {
    const r = await action.run(() => api<Alert>(`/alerts/${encodeURIComponent(id)}/${path}`, { method: 'POST', body }));
    if (r.ok) reload();
  };
  if (error) return <div class="page"><h1>Alert</h1><ErrorBox error={error} /></div>;
  if (!data) return <div class="page"><h1>Alert</h1><Loading when={loading} /></div>;
  const alert = data.alert;
  const silenced = alert.silenced_until != null && new Date(alert.silenced_until) > new Date();
  return (
    <div class="page">
      <h1>
        <StatusBadge value={alert.severity} /> {alert.title}
      </h1>
      <p>
        <a href="/alerts">All alerts</a>
      </p>
      <Section title="Alert">
        <dl class="facts">
          <dt>State</dt>
          <dd>
            <StatusBadge value={alert.state} />
          </dd>
          <dt>Rule</dt>
          <dd class="mono">{alert.rule}</dd>
          <dt>About</dt>
          <dd class="mono">{alert.key}</dd>
          {alert.server && (
            <>
              <dt>Server</dt>
              <dd>
                <a href={`/servers/${alert.server_id}`}>{alert.server}</a>
              </dd>
            </>
          )}
          <dt>Opened</dt>
          <dd>{formatTime(alert.opened_at)}</dd>
          <dt>Last seen holding</dt>
          <dd>{formatTime(alert.held_at)}</dd>
          {alert.resolved_at && (
            <>
              <dt>Resolved</dt>
              <dd>{formatTime(alert.resolved_at)}</dd>
            </>
          )}
          <dt>Occurrences</dt>
          <dd>{alert.occurrences}</dd>
          <dt>Acknowledged</dt>
          <dd data-testid="acknowledged">
            {alert.acknowledged_by ? `by ${alert.acknowledged_by}, ${formatTime(alert.acknowledged_at)}` : 'no'}
          </dd>
          <dt>Silenced</dt>
          <dd data-testid="silenced">{silenced ? `until ${formatTime(alert.silenced_until)} (by ${alert.silenced_by})` : 'no'}</dd>
        </dl>
        <form
          class="filters"
          aria-label="Handle the alert"
          onSubmit={(e) => {
            e.preventDefault();
            act('silence', { minutes: Number(minutes) } satisfies SilenceRequest);
          }}
        >
          {!alert.acknowledged_by && alert.state === 'open' && (
            <button type="button" class="primary" disabled={action.busy} onClick={() => act('acknowledge', {})}>
              Acknowledge
            </button>
          )}
          <label class="field">
            <span>Silence for (minutes)</span>
            <input type="number" min={1} max={43200} value={minutes} onInput={(e) => setMinutes(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={action.busy}>
            Silence
          </button>
          {silenced && (
            <button type="button" disabled={action.busy} onClick={() => act('silence', { minutes: null } satisfies SilenceRequest)}>
              Lift the silence
            </button>
          )}
        </form>
        <ErrorBox error={action.error} />
      </Section>
      <Section title="Evidence">
        <EvidenceValue value={alert.evidence} />
      </Section>
      <Section title="History">
        <DataTable
          label="History"
          rows={data.events}
          columns={[
            { key: 'a', label: 'At', class: 'nowrap', render: (e) => formatTime(e.at) },
            { key: 'k', label: 'What', render: (e) => e.kind },
            { key: 'w', label: 'Who', render: (e) => e.actor ?? 'ELSE' },
            {
              key: 'd',
              label: 'Details',
              render: (e) =>
                e.details && Object.keys(e.details).length > 0 ? (
                  <details>
                    <summary>details</summary>
                    <EvidenceValue value={e.details} />
                  </details>
                ) : (
                  ''
                ),
            },
          ]}
        />
      </Section>
    </div>
  );
}
