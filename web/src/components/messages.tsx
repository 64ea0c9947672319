// The table of message summaries that search, bulk search and history share.

import type { MessageSummary } from '../api';
import { bare, formatBytes, formatTime } from '../format';
import { Column, DataTable, StatusBadge } from './ui';

export function recipientsText(m: MessageSummary): string {
  const shown = m.recipients
    .slice(0, 3)
    .map((r) => r.address)
    .join(', ');
  return m.recipient_count > 3 ? `${shown} (+${m.recipient_count - 3})` : shown;
}

/** The reply Postfix gave refused mail: `550 5.1.1 <x>: Recipient address rejected: …`. */
export function replyText(m: MessageSummary): string {
  const r = m.refusal;
  return r ? [r.code, r.enhanced, r.reason].filter(Boolean).join(' ') : '';
}

const columns: Column<MessageSummary>[] = [
  {
    key: 'first_seen',
    label: 'Time',
    sort: 'first_seen',
    class: 'nowrap',
    // Refused mail has no message to open: its row says all there is (the Rejects page has more).
    render: (m) =>
      m.kind === 'refused' ? (
        formatTime(m.first_seen)
      ) : (
        <a href={`/messages/${encodeURIComponent(m.id)}`}>{formatTime(m.first_seen)}</a>
      ),
  },
  { key: 'server', label: 'Server', render: (m) => m.server },
  { key: 'queue_id', label: 'Queue id', class: 'mono', render: (m) => m.queue_id },
  { key: 'sender', label: 'Sender', sort: 'sender', class: 'addr', render: (m) => m.sender || '<>' },
  {
    key: 'recipients',
    label: 'Recipients',
    class: 'addr',
    render: (m) =>
      m.kind === 'refused' ? (
        <>
          {recipientsText(m)} <span class="refusal">{replyText(m)}</span>
        </>
      ) : (
        recipientsText(m)
      ),
  },
  {
    key: 'state',
    label: 'State',
    render: (m) => (
      <>
        <StatusBadge value={m.state} />
        {m.kind === 'refused' && <span class="muted"> refused ({m.refusal?.stage})</span>}
      </>
    ),
  },
  { key: 'flow', label: 'Flow', render: (m) => m.flow ?? '' },
  { key: 'size', label: 'Size', sort: 'size', class: 'num', render: (m) => formatBytes(m.size) },
  {
    key: 'client',
    label: 'Client',
    class: 'addr',
    render: (m) =>
      [m.client_name, m.client_ip && `[${m.client_ip}]`, m.client_country].filter(Boolean).join(' '),
  },
  { key: 'message_id', label: 'Message-ID', class: 'mono addr', render: (m) => bare(m.message_id) },
];

export function MessageTable(props: {
  rows: MessageSummary[];
  sort?: string;
  onSort?: (sort: string) => void;
}) {
  return (
    <DataTable
      label="Messages"
      columns={columns}
      rows={props.rows}
      sort={props.sort ?? '-first_seen'}
      onSort={props.onSort}
      rowKey={(m) => m.id}
    />
  );
}
