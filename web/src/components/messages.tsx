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

const columns: Column<MessageSummary>[] = [
  {
    key: 'first_seen',
    label: 'Time',
    sort: 'first_seen',
    class: 'nowrap',
    render: (m) => <a href={`/messages/${encodeURIComponent(m.id)}`}>{formatTime(m.first_seen)}</a>,
  },
  { key: 'server', label: 'Server', render: (m) => m.server },
  { key: 'queue_id', label: 'Queue id', class: 'mono', render: (m) => m.queue_id },
  { key: 'sender', label: 'Sender', sort: 'sender', class: 'addr', render: (m) => m.sender || '<>' },
  { key: 'recipients', label: 'Recipients', class: 'addr', render: (m) => recipientsText(m) },
  { key: 'state', label: 'State', render: (m) => <StatusBadge value={m.state} /> },
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
