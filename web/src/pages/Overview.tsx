// The landing page (GET /overview, one answer within the caller's scope): open alerts, each
// server's health, queues and ingest, today's traffic per flow against its usual level, and the
// remote hosts with the most deferrals and bounces now. End users land on the message search.

import type { Overview, ServerOverview } from '../api';
import { useEffect } from 'preact/hooks';
import { useApi } from '../hooks';
import { formatDuration, formatNumber, formatTime } from '../format';
import { AlertTable } from './Alerts';
import { DataTable, Empty, ErrorBox, Loading, Section, StatusBadge } from '../components/ui';

/** The page refreshes itself this often. */
const REFRESH_MS = 60_000;

export function OverviewPage() {
  const { data, error, loading, reload } = useApi<Overview>('/overview');
  useEffect(() => {
    const timer = window.setInterval(reload, REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [reload]);
  return (
    <div class="page">
      <h1>Overview</h1>
      <ErrorBox error={error} />
      <Loading when={loading && !data} />
      {data && (
        <>
          <Section
            title="Open alerts"
            actions={
              <>
                <span class="badge st-critical">{data.alerts.critical} critical</span>{' '}
                <span class="badge st-warning">{data.alerts.warning} warning</span>{' '}
                <a href="/alerts">All alerts</a>
              </>
            }
          >
            {data.alerts.top.length === 0 ? (
              <Empty>No open alert: all is well.</Empty>
            ) : (
              <AlertTable rows={data.alerts.top} label="Open alerts" />
            )}
          </Section>
          <Section title="Servers">
            {data.servers.length === 0 ? (
              <Empty>No server yet: servers register themselves from their first log line.</Empty>
            ) : (
              <ServersTable rows={data.servers} />
            )}
          </Section>
          <Section title="Today's traffic">
            {data.traffic.length === 0 ? (
              <Empty>No message received today, nor on the same day of the last four weeks.</Empty>
            ) : (
              <DataTable
                label="Today's traffic"
                rows={data.traffic}
                rowKey={(f) => f.flow}
                columns={[
                  { key: 'f', label: 'Flow', render: (f) => <a href={`/stats?flow=${f.flow}`}>{f.flow}</a> },
                  { key: 't', label: 'Received today', class: 'num', render: (f) => formatNumber(f.today) },
                  { key: 'u', label: 'Usual by now', class: 'num', render: (f) => formatNumber(Math.round(f.usual)) },
                  { key: 'r', label: 'Against usual', class: 'num', render: (f) => against(f.today, f.usual) },
                ]}
              />
            )}
          </Section>
          <Section title="Destinations in trouble (last hour)">
            {data.trouble.length === 0 ? (
              <Empty>No deferral or bounce in the last hour.</Empty>
            ) : (
              <DataTable
                label="Destinations in trouble"
                rows={data.trouble}
                rowKey={(t) => t.host}
                columns={[
                  { key: 'h', label: 'Remote host', class: 'mono', render: (t) => t.host },
                  { key: 'd', label: 'Deferrals', class: 'num', render: (t) => formatNumber(t.deferred) },
                  { key: 'b', label: 'Bounces', class: 'num', render: (t) => formatNumber(t.bounced) },
                ]}
              />
            )}
          </Section>
        </>
      )}
    </div>
  );
}

function against(today: number, usual: number): string {
  if (usual === 0) return today === 0 ? '' : 'new';
  return `${Math.round((today / usual) * 100)} %`;
}

function ServersTable({ rows }: { rows: ServerOverview[] }) {
  return (
    <DataTable
      label="Servers"
      rows={rows}
      rowKey={(s) => String(s.server.id)}
      columns={[
        { key: 'n', label: 'Name', render: (s) => <a href={`/servers/${s.server.id}`}>{s.server.name}</a> },
        { key: 'h', label: 'Health', render: (s) => <StatusBadge value={s.server.health?.state ?? 'unknown'} /> },
        { key: 'w', label: 'Why', render: (s) => s.server.health?.reason ?? '' },
        { key: 'a', label: 'Active', class: 'num', render: (s) => formatNumber(s.server.health?.queues?.active) },
        { key: 'd', label: 'Deferred', class: 'num', render: (s) => formatNumber(s.server.health?.queues?.deferred) },
        { key: 'o', label: 'Hold', class: 'num', render: (s) => formatNumber(s.server.health?.queues?.hold) },
        { key: 'l', label: 'Lines/s', class: 'num', render: (s) => s.lines_per_second.toFixed(1) },
        { key: 'g', label: 'Lag', class: 'num', render: (s) => (s.lag_seconds == null ? '' : formatDuration(s.lag_seconds)) },
        { key: 't', label: 'Last line', class: 'nowrap', render: (s) => formatTime(s.server.last_seen) },
      ]}
    />
  );
}
