// The caller's own last searches, each one a link that runs it again.

import { queryString } from '../api';
import type { HistoryItem } from '../api';
import { useApi } from '../hooks';
import { formatTime } from '../format';
import { DataTable, Empty, ErrorBox, Loading, Section } from '../components/ui';

const PAGE_OF: Record<string, string> = { quick: '/search', extended: '/search', rejects: '/rejects', logs: '/logs' };

function describe(params: HistoryItem['params']): string {
  return Object.entries(params)
    .filter(([k, v]) => v !== null && v !== '' && k !== 'page' && k !== 'per_page')
    .map(([k, v]) => (Array.isArray(v) ? `${k}: ${v.length} ids` : `${k}=${String(v)}`))
    .join(', ');
}

export function HistoryPage() {
  const history = useApi<HistoryItem[]>('/search-history');
  const rows = history.data ?? [];
  return (
    <div class="page">
      <h1>Search history</h1>
      <Section title="My searches">
        <ErrorBox error={history.error} />
        <Loading when={history.loading} />
        {history.data && rows.length === 0 && <Empty>No search yet.</Empty>}
        {rows.length > 0 && (
          <DataTable
            label="Search history"
            rows={rows}
            rowKey={(h) => h.id}
            columns={[
              { key: 'at', label: 'When', class: 'nowrap', render: (h) => formatTime(h.at) },
              { key: 'kind', label: 'Kind', render: (h) => h.kind },
              {
                key: 'params',
                label: 'Search',
                render: (h) => {
                  const page = PAGE_OF[h.kind];
                  const text = describe(h.params) || '(everything)';
                  if (!page) return text;
                  const q: Record<string, string> = {};
                  for (const [k, v] of Object.entries(h.params)) if (v !== null && v !== undefined) q[k] = String(v);
                  return <a href={`${page}${queryString(q)}`}>{text}</a>;
                },
              },
            ]}
          />
        )}
      </Section>
    </div>
  );
}
