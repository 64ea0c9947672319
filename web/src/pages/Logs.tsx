// Raw log lines by server and time range, with a substring search (trigram-indexed on the server).

import { LogLine, Page } from '../api';
import { useApi } from '../hooks';
import { LogTable } from '../components/loglines';
import { ResultsSection, Section } from '../components/ui';
import { ServerField, TextField, TimeRange, useFilterForm } from '../components/forms';

const FIELDS = ['q', 'server', 'program', 'since', 'until'];

export function LogsPage() {
  const { query, patch, draft, set, submit, clear } = useFilterForm(FIELDS);
  const results = useApi<Page<LogLine>>('/logs', query);
  return (
    <div class="page">
      <h1>Logs</h1>
      <Section title="Log search">
        <form class="filters" aria-label="Log search" onSubmit={submit}>
          <TextField label="Text" name="q" draft={draft} set={set} placeholder="substring of the line" />
          <ServerField draft={draft} set={set} />
          <TextField label="Program" name="program" draft={draft} set={set} placeholder="postfix/smtpd" />
          <TimeRange draft={draft} set={set} />
          <div class="buttons">
            <button type="submit" class="primary">Search</button>
            <button type="button" onClick={clear}>Clear</button>
          </div>
        </form>
      </Section>
      <ResultsSection
        title="Lines"
        page="/logs"
        path="/logs"
        query={query}
        results={results}
        empty="No line matches."
        onPage={(p) => patch({ page: p }, false)}
      >
        {(items) => <LogTable rows={items} />}
      </ResultsSection>
    </div>
  );
}
