// Greylisting: outcomes over time and per domain, recent decisions, and (admins) the whitelist.

import { useState } from 'preact/hooks';
import { api } from '../api';
import type { EntryKind, GreylistCounts, GreylistDecision, GreylistStats, NewEntry, Page, WhitelistEntry } from '../api';
import { useAction, useApi } from '../hooks';
import { formatDuration, formatNumber, formatTime } from '../format';
import { useSession, isAdmin } from '../session';
import { BarTable, TimeChart } from '../components/charts';
import { ConfirmDialog, DataTable, Empty, ErrorBox, Field, Loading, Pager, Section, StatusBadge } from '../components/ui';
import { greylistBars, StatsFilters, useStatsFilters } from './Stats';

export function GreylistPage() {
  const { me } = useSession();
  const filters = useStatsFilters();
  const stats = useApi<GreylistStats>('/greylist/stats', filters);
  const [page, setPage] = useState(1);
  const decisions = useApi<Page<GreylistDecision>>('/greylist/decisions', {
    since: filters.since,
    until: filters.until,
    page: page > 1 ? page : undefined,
  });
  const s = stats.data;
  const outcomes = Object.keys(s?.totals ?? {}) as (keyof GreylistCounts)[];
  return (
    <div class="page">
      <h1>Greylisting</h1>
      <Section title="Filters">
        <StatsFilters />
      </Section>
      <Section title="Outcomes">
        <ErrorBox error={stats.error} />
        <Loading when={stats.loading} />
        {s && (
          <div class="grid2">
            <BarTable
              label="Greylisting totals"
              keyLabel="Outcome"
              rows={greylistBars(s.totals)}
            />
            {s.series.length > 0 ? (
              <TimeChart
                title="Greylisting over time"
                times={s.series.map((p) => p.t)}
                series={outcomes.map((k) => ({ label: k.replace(/_/g, ' '), values: s.series.map((p) => p[k]) }))}
              />
            ) : (
              <Empty>No greylisting in this range.</Empty>
            )}
          </div>
        )}
        {s && s.by_domain.length > 0 && (
          <DataTable
            label="Greylisting by domain"
            rows={s.by_domain}
            columns={[
              { key: 'd', label: 'Domain', render: (r) => r.domain },
              { key: 'e', label: 'Deferred', class: 'num', render: (r) => formatNumber(r.deferred) },
              { key: 'p', label: 'Passed', class: 'num', render: (r) => formatNumber(r.passed) },
            ]}
          />
        )}
      </Section>
      <Section title="Decisions">
        <ErrorBox error={decisions.error} />
        {decisions.data && decisions.data.items.length === 0 && <Empty>No decision in this range.</Empty>}
        {decisions.data && decisions.data.items.length > 0 && (
          <>
            <Pager page={decisions.data} onPage={setPage} />
            <DataTable
              label="Greylisting decisions"
              rows={decisions.data.items}
              columns={[
                { key: 't', label: 'Time', class: 'nowrap', render: (d) => formatTime(d.ts) },
                { key: 'c', label: 'Client', class: 'mono', render: (d) => d.client_ip ?? '' },
                { key: 's', label: 'Sender', class: 'addr', render: (d) => d.sender ?? '' },
                { key: 'r', label: 'Recipient', class: 'addr', render: (d) => d.recipient ?? '' },
                { key: 'd', label: 'Decision', render: (d) => <StatusBadge value={d.decision} /> },
                { key: 'w', label: 'Wait left', class: 'num', render: (d) => formatDuration(d.delay_remaining) },
              ]}
            />
          </>
        )}
      </Section>
      {isAdmin(me) && <Whitelist />}
    </div>
  );
}

const KINDS: [EntryKind, string][] = [
  ['client', 'client (IP, CIDR or host)'],
  ['recipient', 'recipient address'],
  ['domain_optout', 'domain opted out'],
  ['domain_optin', 'domain opted in'],
];

function Whitelist() {
  const list = useApi<WhitelistEntry[]>('/admin/greylist/whitelist');
  const [kind, setKind] = useState<EntryKind>('client');
  const [value, setValue] = useState('');
  const [comment, setComment] = useState('');
  const [removing, setRemoving] = useState<WhitelistEntry | null>(null);
  const action = useAction();
  const add = async (e: Event) => {
    e.preventDefault();
    const ok = await action.run(() => api('/admin/greylist/whitelist', { method: 'POST', body: { kind, value, comment } satisfies NewEntry }));
    if (ok.ok) {
      setValue('');
      setComment('');
      list.reload();
    }
  };
  const remove = async () => {
    const id = removing?.id;
    setRemoving(null);
    if (!id) return;
    await action.run(() => api(`/admin/greylist/whitelist/${encodeURIComponent(id)}`, { method: 'DELETE' }));
    list.reload();
  };
  return (
    <Section title="Whitelist">
      <form class="filters" aria-label="Add to whitelist" onSubmit={add}>
        <Field label="Kind">
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value as EntryKind)}>
            {KINDS.map(([k, t]) => (
              <option value={k} key={k}>
                {t}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Value">
          <input required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </Field>
        <Field label="Comment">
          <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
        </Field>
        <div class="buttons">
          <button type="submit" class="primary" disabled={action.busy}>
            Add
          </button>
        </div>
      </form>
      <ErrorBox error={action.error ?? list.error} />
      <DataTable
        label="Whitelist"
        rows={list.data ?? []}
        rowKey={(w) => `${w.id ?? w.source}:${w.kind}:${w.value}`}
        columns={[
          { key: 'k', label: 'Kind', render: (w) => KINDS.find(([k]) => k === w.kind)?.[1] ?? w.kind },
          { key: 'v', label: 'Value', class: 'mono', render: (w) => w.value },
          { key: 'c', label: 'Comment', render: (w) => w.comment },
          { key: 'b', label: 'Added by', render: (w) => w.created_by ?? '' },
          { key: 'a', label: 'Added', class: 'nowrap', render: (w) => formatTime(w.created_at) },
          { key: 's', label: 'Source', render: (w) => `${w.source}${w.active ? '' : ' (inactive in this mode)'}` },
          {
            key: 'x',
            label: 'Remove',
            render: (w) =>
              w.id === null ? (
                <span class="muted">edit the configuration</span>
              ) : (
              <button type="button" class="link danger" aria-label={`Remove ${w.value}`} onClick={() => setRemoving(w)}>
                remove
              </button>
            ),
          },
        ]}
      />
      <ConfirmDialog open={removing !== null} title="Remove from the whitelist" confirmLabel="Remove" onConfirm={remove} onCancel={() => setRemoving(null)}>
        Remove <strong>{removing?.value}</strong> ({removing?.kind}) from the greylisting whitelist?
      </ConfirmDialog>
    </Section>
  );
}
