// Bulk search: a pasted or uploaded list of Message-IDs (one per line) → POST /messages/bulk.

import { useState } from 'preact/hooks';
import { api } from '../api';
import type { BulkResult } from '../api';
import { useAction } from '../hooks';
import { MessageTable } from '../components/messages';
import { Empty, ErrorBox, Field, Section } from '../components/ui';
import { csvOf, downloadText } from '../csv';

const MAX = 10000;

export function parseIds(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split(/[\r\n,;]+/)) {
    const id = line.trim();
    if (id) seen.add(id);
  }
  return [...seen];
}

export function BulkPage() {
  const [text, setText] = useState('');
  const [answer, setAnswer] = useState<BulkResult | null>(null);
  const action = useAction();
  const ids = parseIds(text);

  const onFile = async (e: Event) => {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (file) setText(await file.text());
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (ids.length === 0) return action.setError('Paste or upload at least one Message-ID.');
    if (ids.length > MAX) return action.setError(`At most ${MAX} Message-IDs at once (${ids.length} given).`);
    const result = await action.run(() =>
      api<BulkResult>('/messages/bulk', { method: 'POST', body: { message_ids: ids } }),
    );
    if (result.ok) setAnswer(result.value);
  };
  const exportCsv = () => {
    if (!answer) return;
    downloadText(
      'else-bulk-search.csv',
      csvOf(answer.items.map((m) => ({ ...m, recipients: m.recipients.map((r) => r.address).join(' ') }))),
    );
  };
  return (
    <div class="page">
      <h1>Bulk search</h1>
      <Section title="Message-IDs">
        <form onSubmit={submit} class="stack" aria-label="Bulk search">
          <Field label="Message-IDs, one per line" wide>
            <textarea rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </Field>
          <Field label="Or upload a file">
            <input type="file" accept=".txt,.csv,text/plain" onChange={onFile} />
          </Field>
          <div class="buttons">
            <span class="muted">{ids.length} distinct</span>
            <button type="submit" class="primary" disabled={action.busy}>
              Search
            </button>
          </div>
          <ErrorBox error={action.error} />
        </form>
      </Section>
      {answer && (
        <Section
          title={`Results: ${answer.items.length} found, ${answer.not_found.length} not found`}
          id="bulk-results"
          actions={
            <button type="button" onClick={exportCsv}>
              Export CSV
            </button>
          }
        >
          {answer.items.length === 0 ? <Empty>None of these Message-IDs was found.</Empty> : <MessageTable rows={answer.items} />}
          {answer.not_found.length > 0 && (
            <details>
              <summary>Not found ({answer.not_found.length})</summary>
              <ul class="mono">
                {answer.not_found.map((id) => (
                  <li key={id}>{id}</li>
                ))}
              </ul>
            </details>
          )}
        </Section>
      )}
    </div>
  );
}
