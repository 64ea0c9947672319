// The statistics dashboard: every panel reads one /stats endpoint with the same filters (time
// range, server, flow, domain, group), which live in the URL like every other screen's.

import { Fragment } from 'preact';
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Bucket, Countries, Delays, GreylistCounts, GreylistStats, Group, ItemsCount, ItemsOutcome, Query, Sizes, Top, Traffic } from '../api';
import { useApi } from '../hooks';
import { useUrlQuery, FLOWS } from '../urlstate';
import { formatBytes, formatDuration, formatNumber, lastHours } from '../format';
import { BarTable, TimeChart } from '../components/charts';
import { Empty, ErrorBox, Loading, Section } from '../components/ui';
import { cleanDraft, Draft, draftOf, SelectField, ServerField, TextField, TimeRange } from '../components/forms';
import { isAdmin, useSession } from '../session';

const FIELDS = ['since', 'until', 'server', 'flow', 'domain', 'group', 'bucket'];
const TRAFFIC = ['received', 'delivered', 'deferred', 'bounced', 'rejected', 'expired'] as const;

/** The dashboard's filters, with the last 24 hours when the URL names no range. */
export function useStatsFilters(): Query {
  const { query } = useUrlQuery();
  const range = query.since || query.until ? {} : lastHours(24);
  const [defaults] = useState(range);
  return { ...defaults, ...query };
}

export function StatsFilters({ presets = true, extra = [] as string[] }) {
  const { query, setAll } = useUrlQuery();
  const filters = useStatsFilters();
  const session = useSession();
  const keys = [...FIELDS, ...extra];
  const [draft, setDraft] = useState<Draft>(() => draftOf(filters as Record<string, string>, keys));
  useEffect(() => setDraft(draftOf(filters as Record<string, string>, keys)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  // Administrators narrow by any group; others by their own.
  const allGroups = useApi<Group[]>(isAdmin(session.me) ? '/admin/groups' : null);
  const groups = isAdmin(session.me) ? allGroups.data ?? [] : session.me.groups;
  return (
    <form class="filters" aria-label="Statistics filters" onSubmit={(e) => (e.preventDefault(), setAll(cleanDraft(draft)))}>
      <TimeRange draft={draft} set={set} />
      <ServerField draft={draft} set={set} />
      <SelectField label="Flow" name="flow" draft={draft} set={set} options={FLOWS} any="all flows" />
      <TextField label="Domain" name="domain" draft={draft} set={set} placeholder="example.org" />
      {groups.length > 0 && (
        <SelectField
          label="Group"
          name="group"
          draft={draft}
          set={set}
          any={isAdmin(session.me) ? 'all groups' : 'all my groups'}
          options={groups.map((g) => [String(g.id), g.name] as [string, string])}
        />
      )}
      <SelectField label="Bucket" name="bucket" draft={draft} set={set} any="automatic" options={['hour', 'day']} />
      <div class="buttons">
        <button type="submit" class="primary">
          Apply
        </button>
        {presets &&
          [
            ['24 h', 24],
            ['7 days', 168],
            ['30 days', 720],
          ].map(([label, hours]) => (
            <button type="button" key={label} onClick={() => setAll({ ...cleanDraft(draft), ...lastHours(hours as number) })}>
              Last {label}
            </button>
          ))}
      </div>
    </form>
  );
}

function Panel<T>(props: { title: string; path: string; query: Query; render: (data: T) => ComponentChildren; actions?: ComponentChildren }) {
  const data = useApi<T>(props.path, props.query);
  return (
    <Section title={props.title} actions={props.actions}>
      <ErrorBox error={data.error} />
      <Loading when={data.loading} />
      {data.data !== undefined && props.render(data.data)}
    </Section>
  );
}

export function TrafficPanel({ filters }: { filters: Query }) {
  return (
    <Panel<Traffic>
      title="Traffic"
      path="/stats/traffic"
      query={filters}
      render={(d) => {
        const { series, totals } = d;
        return (
          <>
            <table class="totals" aria-label="Traffic totals">
              <thead>
                <tr>
                  {TRAFFIC.map((k) => (
                    <th scope="col" key={k}>
                      {k}
                    </th>
                  ))}
                  <th scope="col">bytes received</th>
                  <th scope="col">bytes delivered</th>
                </tr>
              </thead>
              <tbody>
                <tr>
                  {TRAFFIC.map((k) => (
                    <td class="num" key={k}>
                      {formatNumber(totals[k])}
                    </td>
                  ))}
                  <td class="num">{formatBytes(totals.bytes_received)}</td>
                  <td class="num">{formatBytes(totals.bytes_delivered)}</td>
                </tr>
              </tbody>
            </table>
            {series.length === 0 ? (
              <Empty>No traffic in this range.</Empty>
            ) : (
              <div class="grid2">
                <TimeChart
                  title={`Messages per ${d.bucket}`}
                  times={series.map((p) => p.t)}
                  series={TRAFFIC.map((k) => ({ label: k, values: series.map((p) => p[k]) }))}
                />
                <TimeChart
                  title={`Bytes per ${d.bucket}`}
                  times={series.map((p) => p.t)}
                  format={formatBytes}
                  series={[
                    { label: 'bytes received', values: series.map((p) => p.bytes_received) },
                    { label: 'bytes delivered', values: series.map((p) => p.bytes_delivered) },
                  ]}
                />
              </div>
            )}
          </>
        );
      }}
    />
  );
}

const TOP_KINDS: [string, string][] = [
  ['senders', 'Senders'],
  ['recipients', 'Recipients'],
  ['sender_domains', 'Sender domains'],
  ['recipient_domains', 'Recipient domains'],
  ['clients', 'Clients'],
  ['relays', 'Relays'],
];

function TopPanel({ filters }: { filters: Query }) {
  const [kind, setKind] = useState('senders');
  const [by, setBy] = useState('count');
  const label = TOP_KINDS.find(([k]) => k === kind)?.[1] ?? kind;
  return (
    <Panel<Top>
      title="Top lists"
      path="/stats/top"
      query={{ ...filters, kind, by, limit: 20 }}
      actions={
        <>
          <label class="inline">
            List{' '}
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
              {TOP_KINDS.map(([k, text]) => (
                <option value={k} key={k}>
                  {text}
                </option>
              ))}
            </select>
          </label>
          <label class="inline">
            By{' '}
            <select value={by} onChange={(e) => setBy(e.currentTarget.value)}>
              <option value="count">count</option>
              <option value="bytes">size</option>
            </select>
          </label>
        </>
      }
      render={(d) =>
        d.items.length === 0 ? (
          <Empty>Nothing in this range.</Empty>
        ) : (
          <BarTable
            label={`Top ${label.toLowerCase()}`}
            keyLabel={label}
            valueLabel={by === 'bytes' ? 'Bytes' : 'Messages'}
            format={by === 'bytes' ? formatBytes : formatNumber}
            rows={d.items.map((i) => ({
              key: i.key,
              value: by === 'bytes' ? i.bytes : i.messages,
              extra: by === 'bytes' ? `${formatNumber(i.messages)} msgs` : formatBytes(i.bytes),
            }))}
          />
        )
      }
    />
  );
}

function BreakdownPanel(props: { title: string; path: string; filters: Query; param: string; choices: [string, string][]; extra?: Query }) {
  const [choice, setChoice] = useState(props.choices[0][0]);
  const label = props.choices.find(([k]) => k === choice)?.[1] ?? choice;
  return (
    <Panel<ItemsCount>
      title={props.title}
      path={props.path}
      query={{ ...props.filters, ...props.extra, [props.param]: choice }}
      actions={
        <label class="inline">
          By{' '}
          <select value={choice} onChange={(e) => setChoice(e.currentTarget.value)}>
            {props.choices.map(([k, text]) => (
              <option value={k} key={k}>
                {text}
              </option>
            ))}
          </select>
        </label>
      }
      render={(d) =>
        d.items.length === 0 ? (
          <Empty>Nothing in this range.</Empty>
        ) : (
          <BarTable
            label={`${props.title} by ${label}`}
            keyLabel={label}
            rows={d.items.map((i) => ({ key: i.key, value: i.count }))}
          />
        )
      }
    />
  );
}

function Histogram({ label, rows, format }: { label: string; rows: Bucket[]; format: (v: number) => string }) {
  return (
    <BarTable
      label={label}
      keyLabel="Up to"
      rows={rows.map((h) => ({
        key: h.le === null ? 'more' : `≤ ${format(h.le)}`,
        value: h.count,
      }))}
    />
  );
}

function DelaysPanel({ filters }: { filters: Query }) {
  return (
    <Panel<Delays>
      title="Delivery delay"
      path="/stats/delays"
      query={filters}
      render={(d) => (
        <>
          <dl class="facts inline-facts" aria-label="Delay percentiles">
            {(['p50', 'p90', 'p95', 'p99', 'max'] as const).map((k) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd>{formatDuration(d.percentiles[k])}</dd>
              </Fragment>
            ))}
          </dl>
          {d.histogram.length > 0 && <Histogram label="Delay distribution" rows={d.histogram} format={formatDuration} />}
        </>
      )}
    />
  );
}

function SizesPanel({ filters }: { filters: Query }) {
  return (
    <Panel<Sizes>
      title="Message sizes"
      path="/stats/sizes"
      query={filters}
      render={(d) =>
        d.histogram.length === 0 ? <Empty>Nothing in this range.</Empty> : <Histogram label="Size distribution" rows={d.histogram} format={formatBytes} />
      }
    />
  );
}

function CountriesPanel({ filters }: { filters: Query }) {
  const [metric, setMetric] = useState('received');
  return (
    <Panel<Countries>
      title="Countries"
      path="/stats/countries"
      query={{ ...filters, metric }}
      actions={
        <label class="inline">
          Metric{' '}
          <select value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
            <option value="received">received</option>
            <option value="rejected">rejected</option>
          </select>
        </label>
      }
      render={(d) => (
        <>
          {d.items.length === 0 ? (
            <Empty>No client country known in this range.</Empty>
          ) : (
            <BarTable
              label={`Countries (${metric})`}
              keyLabel="Country"
              valueLabel="Messages"
              rows={d.items.map((i) => ({ key: i.country_name ? `${i.country_name} (${i.country})` : i.country, value: i.messages }))}
            />
          )}
          {d.database && <p class="muted small">Geolocation: {d.database}</p>}
        </>
      )}
    />
  );
}

function PostscreenPanel({ filters }: { filters: Query }) {
  return (
    <Panel<ItemsOutcome>
      title="Postscreen"
      path="/stats/postscreen"
      query={filters}
      render={(d) =>
        d.items.length === 0 ? (
          <Empty>No postscreen decision in this range.</Empty>
        ) : (
          <BarTable label="Postscreen outcomes" keyLabel="Outcome" rows={d.items.map((i) => ({ key: i.outcome, value: i.count }))} />
        )
      }
    />
  );
}

export function GreylistTotals({ filters }: { filters: Query }) {
  return (
    <Panel<GreylistStats>
      title="Greylisting"
      path="/greylist/stats"
      query={filters}
      actions={<a href="/greylist">details</a>}
      render={(d) => (
        <BarTable
          label="Greylisting outcomes"
          keyLabel="Outcome"
          rows={greylistBars(d.totals)}
        />
      )}
    />
  );
}

/** The greylisting outcomes as bars (`passed after delay`, …), in the API's order. */
export function greylistBars(totals: GreylistCounts) {
  return (Object.keys(totals) as (keyof GreylistCounts)[]).map((k) => ({ key: k.replace(/_/g, ' '), value: totals[k] }));
}

export function StatsPage() {
  const filters = useStatsFilters();
  return (
    <div class="page">
      <h1>Statistics</h1>
      <Section title="Filters">
        <StatsFilters />
      </Section>
      <TrafficPanel filters={filters} />
      <div class="grid2">
        <TopPanel filters={filters} />
        <BreakdownPanel
          title="Rejects"
          path="/stats/rejects"
          param="group_by"
          filters={filters}
          choices={[
            ['code', 'SMTP code'],
            ['enhanced', 'enhanced code'],
            ['reason', 'reason'],
            ['client', 'client'],
            ['country', 'country'],
          ]}
        />
        <BreakdownPanel
          title="Deferrals"
          path="/stats/problems"
          param="group_by"
          extra={{ kind: 'deferred' }}
          filters={filters}
          choices={[
            ['host', 'remote host'],
            ['reason', 'reason'],
          ]}
        />
        <BreakdownPanel
          title="Bounces"
          path="/stats/problems"
          param="group_by"
          extra={{ kind: 'bounced' }}
          filters={filters}
          choices={[
            ['host', 'remote host'],
            ['reason', 'reason'],
          ]}
        />
        <DelaysPanel filters={filters} />
        <SizesPanel filters={filters} />
        <CountriesPanel filters={filters} />
        <PostscreenPanel filters={filters} />
        <GreylistTotals filters={filters} />
      </div>
    </div>
  );
}
