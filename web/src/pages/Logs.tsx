// Raw log lines by server and time range, with a substring search (trigram-indexed on the server).

import { useEffect, useState } from 'preact/hooks';
import { apiUrl, LogLine, Page, queryString } from '../api';
import { useApi } from '../hooks';
import { useUrlQuery } from '../urlstate';
import { LogTable } from '../components/loglines';
import { CopyLink, Empty, ErrorBox, Loading, Pager, Section } from '../components/ui';
import { cleanDraft, Draft, draftOf, ServerField, TextField, TimeRange } from '../components/forms';

const FIELDS = ['q', 'server', 'program', 'since', 'until'];

export function LogsPage() {
  const { query, setAll, patch } = useUrlQuery();
  const [draft, setDraft] = useState<Draft>(() => draftOf(query, FIELDS));
  useEffect(() => setDraft(draftOf(query, FIELDS)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const results = useApi<Page<LogLine>>('/logs', query);
  return (
    <div class="page">
      <h1>Logs</h1>
      <Section title="Log search">
        <form class="filters" aria-label="Log search" onSubmit={(e) => (e.preventDefault(), setAll(cleanDraft(draft)))}>
          <TextField label="Text" name="q" draft={draft} set={set} placeholder="substring of the line" />
          <ServerField draft={draft} set={set} />
          <TextField label="Program" name="program" draft={draft} set={set} placeholder="postfix/smtpd" />
          <TimeRange draft={draft} set={set} />
          <div class="buttons">
            <button type="submit" class="primary">Search</button>
            <button type="button" onClick={() => setAll({})}>Clear</button>
          </div>
        </form>
      </Section>
      <Section
        title="Lines"
        actions={
          <>
            <CopyLink href={`/logs${queryString(query)}`} label="Copy permalink" />
            <a class="button" download href={apiUrl('/logs', { ...query, page: undefined, format: 'csv' })}>
              Export CSV
            </a>
          </>
        }
      >
        <ErrorBox error={results.error} />
        <Loading when={results.loading} />
        {results.data && results.data.items.length === 0 && <Empty>No line matches.</Empty>}
        {results.data && results.data.items.length > 0 && (
          <>
            <Pager page={results.data} onPage={(p) => patch({ page: p }, false)} />
            <LogTable rows={results.data.items} />
          </>
        )}
      </Section>
    </div>
  );
}
