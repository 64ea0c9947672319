// Greylisting: outcomes over time and per domain, recent decisions, and (admins) the whitelist.

import { useState } from 'preact/hooks';
import { api, GreylistDecision, Page } from '../api';
import { useAction, useApi } from '../hooks';
import { formatDuration, formatNumber, formatTime } from '../format';
import { useSession, isAdmin } from '../session';
import { BarTable, TimeChart } from '../components/charts';
import { ConfirmDialog, DataTable, Empty, ErrorBox, Field, Loading, Pager, Section, StatusBadge } from '../components/ui';
import { StatsFilters, useStatsFilters } from './Stats';

interface GreylistStats {
  totals?: Record<string, number>;
  series?: ({ t: string } & Record<string, number | string>)[];
  by_domain?: { domain: string; deferred?: number; passed?: number }[];
}

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
  const seriesKeys = Object.keys(s?.series?.[0] ?? {}).filter((k) => k !== 't');
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
              rows={Object.entries(s.totals ?? {}).map(([k, v]) => ({ key: k.replace(/_/g, ' '), value: Number(v ?? 0) }))}
            />
            {(s.series ?? []).length > 0 ? (
              <TimeChart
                title="Greylisting over time"
                times={s.series!.map((p) => p.t)}
                series={seriesKeys.map((k) => ({ label: k.replace(/_/g, ' '), values: s.series!.map((p) => Number(p[k] ?? 0)) }))}
              />
            ) : (
              <Empty>No greylisting in this range.</Empty>
            )}
          </div>
        )}
        {s && (s.by_domain ?? []).length > 0 && (
          <DataTable
            label="Greylisting by domain"
            rows={s.by_domain!}
            columns={[
              { key: 'd', label: 'Domain', render: (r) => r.domain },
              { key: 'e', label: 'Deferred', class: 'num', render: (r) => formatNumber(r.deferred ?? 0) },
              { key: 'p', label: 'Passed', class: 'num', render: (r) => formatNumber(r.passed ?? 0) },
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

interface WhitelistEntry {
  /** Null for the configuration file's entries, which are edited there. */
  id: number | string | null;
  kind: string;
  value: string;
  comment?: string;
  created_by?: string | null;
  created_at?: string | null;
  source?: string;
  active?: boolean;
}

const KINDS: [string, string][] = [
  ['client', 'client (IP, CIDR or host)'],
  ['recipient', 'recipient address'],
  ['domain_optout', 'domain opted out'],
  ['domain_optin', 'domain opted in'],
];

function Whitelist() {
  const list = useApi<WhitelistEntry[]>('/admin/greylist/whitelist');
  const [kind, setKind] = useState('client');
  const [value, setValue] = useState('');
  const [comment, setComment] = useState('');
  const [removing, setRemoving] = useState<WhitelistEntry | null>(null);
  const action = useAction();
  const add = async (e: Event) => {
    e.preventDefault();
    const ok = await action.run(() => api('/admin/greylist/whitelist', { method: 'POST', body: { kind, value, comment } }));
    if (ok.ok) {
      setValue('');
      setComment('');
      list.reload();
    }
  };
  const remove = async () => {
    const entry = removing;
    setRemoving(null);
    if (!entry) return;
    await action.run(() => api(`/admin/greylist/whitelist/${encodeURIComponent(String(entry.id))}`, { method: 'DELETE' }));
    list.reload();
  };
  return (
    <Section title="Whitelist">
      <form class="filters" aria-label="Add to whitelist" onSubmit={add}>
        <Field label="Kind">
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
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
          { key: 'c', label: 'Comment', render: (w) => w.comment ?? '' },
          { key: 'b', label: 'Added by', render: (w) => w.created_by ?? '' },
          { key: 'a', label: 'Added', class: 'nowrap', render: (w) => formatTime(w.created_at ?? undefined) },
          { key: 's', label: 'Source', render: (w) => `${w.source ?? ''}${w.active === false ? ' (inactive in this mode)' : ''}` },
          {
            key: 'x',
            label: 'Remove',
            render: (w) =>
              w.id === null || w.id === undefined ? (
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
