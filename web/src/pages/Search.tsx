// Message search: the quick search (q = Message-ID or queue id) and the extended search, both as
// URL queries sent to GET /messages unchanged; results page and sort on the server.

import { useEffect, useState } from 'preact/hooks';
import { apiUrl, Page, MessageSummary, queryString } from '../api';
import { useApi } from '../hooks';
import { useUrlQuery, FLOWS, MESSAGE_STATES } from '../urlstate';
import { MessageTable } from '../components/messages';
import { CopyLink, Empty, ErrorBox, Loading, Pager, Section } from '../components/ui';
import {
  cleanDraft,
  Draft,
  draftOf,
  OperatorField,
  SelectField,
  ServerField,
  TextField,
  TimeRange,
} from '../components/forms';

const FIELDS = [
  'sender', 'sender_op', 'recipient', 'recipient_op', 'client', 'client_op', 'message_id',
  'message_id_op', 'queue_id', 'queue_id_op', 'server', 'flow', 'status', 'size_min', 'size_max',
  'since', 'until',
];

export function SearchPage() {
  const { query, setAll, patch } = useUrlQuery();
  const searching = Object.keys(query).some((k) => k !== 'page' && k !== 'sort' && k !== 'per_page');
  const [draft, setDraft] = useState<Draft>(() => draftOf(query, FIELDS));
  useEffect(() => setDraft(draftOf(query, FIELDS)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const results = useApi<Page<MessageSummary>>(searching ? '/messages' : null, query);

  const submit = (e: Event) => {
    e.preventDefault();
    setAll(cleanDraft(draft));
  };
  const permalink = `/search${queryString(query)}`;
  const csv = apiUrl('/messages', { ...query, page: undefined, format: 'csv' });

  return (
    <div class="page">
      <h1>Message search</h1>
      {query.q && (
        <p class="hint">
          Quick search for <strong class="mono">{query.q}</strong> (Message-ID or queue id).
        </p>
      )}
      <Section title="Extended search">
        <form class="filters" onSubmit={submit} aria-label="Extended search">
          <OperatorField label="Sender" name="sender" draft={draft} set={set} placeholder="alice@example.org or @domain" />
          <OperatorField label="Recipient" name="recipient" draft={draft} set={set} placeholder="bob@example.com or @domain" />
          <OperatorField label="Client" name="client" draft={draft} set={set} placeholder="IP, CIDR or host name" />
          <OperatorField label="Message-ID" name="message_id" draft={draft} set={set} />
          <OperatorField label="Queue id" name="queue_id" draft={draft} set={set} />
          <ServerField draft={draft} set={set} />
          <SelectField label="Flow" name="flow" draft={draft} set={set} options={FLOWS} any="any flow" />
          <SelectField label="Status" name="status" draft={draft} set={set} options={MESSAGE_STATES} any="any status" />
          <TextField label="Size from (bytes)" name="size_min" type="number" draft={draft} set={set} />
          <TextField label="Size up to (bytes)" name="size_max" type="number" draft={draft} set={set} />
          <TimeRange draft={draft} set={set} />
          <div class="buttons">
            <button type="submit" class="primary">
              Search
            </button>
            <button type="button" onClick={() => setAll({})}>
              Clear
            </button>
          </div>
        </form>
      </Section>
      {searching && (
        <Section
          title="Results"
          actions={
            <>
              <CopyLink href={permalink} label="Copy permalink" />
              <a class="button" href={csv} download>
                Export CSV
              </a>
            </>
          }
        >
          <ErrorBox error={results.error} />
          <Loading when={results.loading} />
          {results.data && results.data.items.length === 0 && <Empty>No message matches.</Empty>}
          {results.data && results.data.items.length > 0 && (
            <>
              <Pager page={results.data} onPage={(p) => patch({ page: p }, false)} />
              <MessageTable rows={results.data.items} sort={query.sort} onSort={(s) => patch({ sort: s })} />
            </>
          )}
        </Section>
      )}
    </div>
  );
}
