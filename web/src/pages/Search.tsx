// Message search: the quick search (q = Message-ID or queue id) and the extended search, both as
// URL queries sent to GET /messages unchanged; results page and sort on the server. Before any
// filter, the newest messages in the caller's scope (as the Live page shows the newest lines).

import { Page, MessageSummary } from '../api';
import { useApi } from '../hooks';
import { FLOWS, MESSAGE_STATES } from '../urlstate';
import { MessageTable } from '../components/messages';
import { ResultsSection, Section } from '../components/ui';
import {
  OperatorField,
  SelectField,
  ServerField,
  TextField,
  TimeRange,
  useFilterForm,
} from '../components/forms';

const FIELDS = [
  'sender', 'sender_op', 'recipient', 'recipient_op', 'client', 'client_op', 'message_id',
  'message_id_op', 'queue_id', 'queue_id_op', 'server', 'flow', 'status', 'size_min', 'size_max',
  'since', 'until',
];

export function SearchPage() {
  const { query, patch, draft, set, submit, clear } = useFilterForm(FIELDS);
  const searching = Object.keys(query).some((k) => k !== 'page' && k !== 'sort' && k !== 'per_page');
  const results = useApi<Page<MessageSummary>>('/messages', query);

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
            <button type="button" onClick={clear}>
              Clear
            </button>
          </div>
        </form>
      </Section>
      <ResultsSection
        title={searching ? 'Results' : 'Newest messages'}
        page="/search"
        path="/messages"
        query={query}
        results={results}
        empty={searching ? 'No message matches.' : 'No message yet.'}
        onPage={(p) => patch({ page: p }, false)}
      >
        {(items) => <MessageTable rows={items} sort={query.sort} onSort={(s) => patch({ sort: s })} />}
      </ResultsSection>
    </div>
  );
}
