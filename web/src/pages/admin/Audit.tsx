// The audit log: who changed what, when, and whether it worked.

import type { AuditEntry, Page } from '../../api';
import { useApi } from '../../hooks';
import { formatTime } from '../../format';
import { DataTable, Empty, ErrorBox, Loading, Pager, Section, StatusBadge } from '../../components/ui';
import { TextField, useFilterForm } from '../../components/forms';

const FIELDS = ['actor', 'action'];

export function AuditPage() {
  const { query, patch, draft, set, submit } = useFilterForm(FIELDS);
  const audit = useApi<Page<AuditEntry>>('/admin/audit', query);
  return (
    <div class="page">
      <h1>Audit log</h1>
      <Section title="Entries">
        <form class="filters" aria-label="Audit filters" onSubmit={submit}>
          <TextField label="Actor" name="actor" draft={draft} set={set} />
          <TextField label="Action" name="action" draft={draft} set={set} />
          <div class="buttons">
            <button type="submit" class="primary">Filter</button>
          </div>
        </form>
        <ErrorBox error={audit.error} />
        <Loading when={audit.loading} />
        {audit.data && audit.data.items.length === 0 && <Empty>No entry.</Empty>}
        {audit.data && audit.data.items.length > 0 && (
          <>
            <Pager page={audit.data} onPage={(p) => patch({ page: p }, false)} />
            <DataTable
              label="Audit log"
              rows={audit.data.items}
              rowKey={(a) => String(a.id)}
              columns={[
                { key: 't', label: 'When', class: 'nowrap', render: (a) => formatTime(a.at) },
                { key: 'a', label: 'Actor', render: (a) => a.actor },
                { key: 'c', label: 'Action', render: (a) => a.action },
                { key: 'g', label: 'Target', render: (a) => a.target ?? '' },
                { key: 'r', label: 'Result', render: (a) => <StatusBadge value={a.result} /> },
                { key: 'd', label: 'Details', class: 'mono', render: (a) => (a.details === null ? '' : JSON.stringify(a.details)) },
              ]}
            />
          </>
        )}
      </Section>
    </div>
  );
}
