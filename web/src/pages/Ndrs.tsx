// Captured non-delivery reports: the list (filters in the URL) and one report's detail.

import { Fragment } from 'preact';
import { apiUrl } from '../api';
import type { NdrDetail, NdrSummary, Page } from '../api';
import { useApi } from '../hooks';
import { formatTime } from '../format';
import { DataTable, Empty, ErrorBox, Loading, Pager, Section, StatusBadge } from '../components/ui';
import { SelectField, ServerField, TextField, TimeRange, useFilterForm } from '../components/forms';

const FIELDS = ['since', 'until', 'server', 'sender', 'recipient', 'status', 'linked'];

function failed(n: NdrSummary) {
  return n.failed_recipients.map((r) => `${r.address ?? ''}${r.status ? ` (${r.status})` : ''}`).join(', ');
}

export function NdrsPage() {
  const { query, patch, draft, set, submit } = useFilterForm(FIELDS);
  const list = useApi<Page<NdrSummary>>('/ndrs', query);
  return (
    <div class="page">
      <h1>Non-delivery reports</h1>
      <Section title="Filters">
        <form class="filters" aria-label="NDR filters" onSubmit={submit}>
          <TimeRange draft={draft} set={set} />
          <ServerField draft={draft} set={set} />
          <TextField label="Original sender" name="sender" draft={draft} set={set} />
          <TextField label="Failed recipient" name="recipient" draft={draft} set={set} />
          <TextField label="DSN status" name="status" draft={draft} set={set} placeholder="5.1.1" />
          <SelectField label="Linked to a message" name="linked" draft={draft} set={set} any="either" options={[['true', 'yes'], ['false', 'no']]} />
          <div class="buttons">
            <button type="submit" class="primary">Search</button>
          </div>
        </form>
      </Section>
      <Section title="Reports">
        <ErrorBox error={list.error} />
        <Loading when={list.loading} />
        {list.data && list.data.items.length === 0 && <Empty>No NDR matches.</Empty>}
        {list.data && list.data.items.length > 0 && (
          <>
            <Pager page={list.data} onPage={(p) => patch({ page: p }, false)} />
            <DataTable
              label="NDRs"
              rows={list.data.items}
              rowKey={(n) => n.id}
              columns={[
                { key: 'at', label: 'Received', class: 'nowrap', render: (n) => <a href={`/ndrs/${encodeURIComponent(n.id)}`}>{formatTime(n.received_at)}</a> },
                { key: 'server', label: 'Server', render: (n) => n.server ?? '' },
                { key: 'mta', label: 'Reporting MTA', class: 'addr', render: (n) => n.reporting_mta ?? '' },
                { key: 'sender', label: 'Original sender', class: 'addr', render: (n) => n.original_sender ?? '' },
                { key: 'failed', label: 'Failed recipients', class: 'addr', render: failed },
                { key: 'subject', label: 'Subject', render: (n) => n.subject ?? '' },
                {
                  key: 'message',
                  label: 'Message',
                  render: (n) => (n.message_id ? <a href={`/messages/${encodeURIComponent(n.message_id)}`}>open</a> : n.flagged ? <StatusBadge value="unparsable" /> : ''),
                },
              ]}
            />
          </>
        )}
      </Section>
    </div>
  );
}

function KeyValues({ label, data }: { label: string; data: Record<string, string> }) {
  const entries = Object.entries(data);
  if (entries.length === 0) return <Empty>None.</Empty>;
  return (
    <table aria-label={label} class="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="mono">{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function NdrPage({ id }: { id: string }) {
  const ndr = useApi<NdrDetail>(`/ndrs/${encodeURIComponent(id)}`);
  const n = ndr.data;
  return (
    <div class="page">
      <h1>Non-delivery report</h1>
      <ErrorBox error={ndr.error} />
      <Loading when={ndr.loading} />
      {n && (
        <>
          <Section
            title="Summary"
            actions={
              <a class="button" href={apiUrl(`/ndrs/${encodeURIComponent(id)}/raw`)} download>
                Download raw message
              </a>
            }
          >
            <dl class="facts">
              <dt>Received</dt>
              <dd>{formatTime(n.received_at)}</dd>
              <dt>Server</dt>
              <dd>{n.server}</dd>
              <dt>Reporting MTA</dt>
              <dd>{n.reporting_mta}</dd>
              <dt>Queue id</dt>
              <dd class="mono">{n.queue_id}</dd>
              <dt>Original sender</dt>
              <dd class="addr">{n.original_sender}</dd>
              <dt>Subject</dt>
              <dd>{n.subject}</dd>
              <dt>Message</dt>
              <dd>{n.message_id ? <a href={`/messages/${encodeURIComponent(n.message_id)}`}>open the bounced message</a> : 'not linked'}</dd>
            </dl>
            {n.flagged && <p class="error">This report is not a parsable DSN.</p>}
          </Section>
          <Section title="Failed recipients">
            <DataTable
              label="Failed recipients"
              rows={n.failed_recipients}
              columns={[
                { key: 'a', label: 'Recipient', class: 'addr', render: (r) => r.address ?? '' },
                { key: 'b', label: 'Action', render: (r) => <StatusBadge value={r.action} /> },
                { key: 'c', label: 'Status', class: 'mono', render: (r) => r.status ?? '' },
                { key: 'd', label: 'Diagnostic', class: 'reply', render: (r) => r.diagnostic ?? '' },
              ]}
            />
          </Section>
          <Section title="DSN fields">
            <KeyValues label="DSN fields" data={n.dsn.message} />
            {n.dsn.recipients.map((fields, i) => (
              <Fragment key={i}>
                <h3>Recipient {i + 1}</h3>
                <KeyValues label={`DSN fields of recipient ${i + 1}`} data={fields} />
              </Fragment>
            ))}
          </Section>
          <Section title="Headers">
            <KeyValues label="Headers" data={n.headers} />
          </Section>
          <Section title="Returned headers">
            <KeyValues label="Returned headers" data={n.returned_headers} />
          </Section>
        </>
      )}
    </div>
  );
}
