// Raw log lines as a table; a line that belongs to a message links to it.

import type { LogLine } from '../api';
import { formatTime } from '../format';
import { DataTable } from './ui';

export function LogTable({ rows, label = 'Log lines' }: { rows: LogLine[]; label?: string }) {
  return (
    <DataTable
      label={label}
      rows={rows}
      columns={[
        { key: 'ts', label: 'Time', class: 'nowrap', render: (l) => formatTime(l.ts) },
        { key: 'server', label: 'Server', render: (l) => l.server },
        {
          key: 'program',
          label: 'Program',
          class: 'nowrap',
          render: (l) => l.program + (l.pid ? `[${l.pid}]` : ''),
        },
        {
          key: 'queue_id',
          label: 'Queue id',
          class: 'mono',
          render: (l) =>
            l.message_id ? <a href={`/messages/${encodeURIComponent(l.message_id)}`}>{l.queue_id || 'message'}</a> : l.queue_id ?? '',
        },
        { key: 'raw', label: 'Line', class: 'mono raw', render: (l) => l.raw },
      ]}
    />
  );
}
