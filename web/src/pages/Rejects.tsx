// Rejected mail (NOQUEUE and other policy decisions): GET /rejects with the URL's query.

import type { Page, RejectItem } from '../api';
import { useApi } from '../hooks';
import { formatTime } from '../format';
import { DataTable, ResultsSection, Section, StatusBadge } from '../components/ui';
import { OperatorField, SelectField, ServerField, TextField, TimeRange, useFilterForm } from '../components/forms';

const FIELDS = ['client', 'client_op', 'sender', 'sender_op', 'recipient', 'recipient_op', 'code', 'reason', 'action', 'server', 'since', 'until'];

export function RejectsPage() {
  const { query, patch, draft, set, submit, clear } = useFilterForm(FIELDS);
  const results = useApi<Page<RejectItem>>('/rejects', query);
  return (
    <div class="page">
      <h1>Rejected mail</h1>
      <Section title="Reject search">
        <form class="filters" aria-label="Reject search" onSubmit={submit}>
          <OperatorField label="Client" name="client" draft={draft} set={set} />
          <OperatorField label="Sender" name="sender" draft={draft} set={set} />
          <OperatorField label="Recipient" name="recipient" draft={draft} set={set} />
          <TextField label="SMTP code" name="code" draft={draft} set={set} placeholder="554" />
          <TextField label="Reason contains" name="reason" draft={draft} set={set} />
          <SelectField label="Action" name="action" draft={draft} set={set} any="any action" options={['reject', 'warn', 'hold', 'discard', 'filter', 'redirect']} />
          <ServerField draft={draft} set={set} />
          <TimeRange draft={draft} set={set} />
          <div class="buttons">
            <button type="submit" class="primary">Search</button>
            <button type="button" onClick={clear}>Clear</button>
          </div>
        </form>
      </Section>
      <ResultsSection
        title="Rejects"
        page="/rejects"
        path="/rejects"
        query={query}
        results={results}
        empty="No reject matches."
        onPage={(p) => patch({ page: p }, false)}
      >
        {(items) => (
          <DataTable
            label="Rejects"
            rows={items}
            sort={query.sort ?? '-ts'}
            onSort={(s) => patch({ sort: s })}
            columns={[
              { key: 'ts', label: 'Time', sort: 'ts', class: 'nowrap', render: (r) => formatTime(r.ts) },
              { key: 'server', label: 'Server', render: (r) => r.server },
              { key: 'action', label: 'Action', render: (r) => <StatusBadge value={r.action} /> },
              { key: 'code', label: 'Code', class: 'mono', render: (r) => [r.code, r.enhanced].filter(Boolean).join(' ') },
              { key: 'client', label: 'Client', class: 'addr', render: (r) => [r.client_name, r.client_ip && `[${r.client_ip}]`, r.client_country].filter(Boolean).join(' ') },
              { key: 'sender', label: 'Sender', class: 'addr', render: (r) => r.sender ?? '' },
              { key: 'recipient', label: 'Recipient', class: 'addr', render: (r) => r.recipient ?? '' },
              { key: 'reason', label: 'Reason', class: 'reply', render: (r) => r.reason },
              {
                key: 'message',
                label: 'Message',
                render: (r) => (r.message_id ? <a href={`/messages/${encodeURIComponent(r.message_id)}`}>open</a> : ''),
              },
            ]}
          />
        )}
      </ResultsSection>
    </div>
  );
}
