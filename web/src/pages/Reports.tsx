// The pflogsumm-style report of a range, per server or domain, as elsed renders it (HTML), with the
// text and JSON forms one click away.

import { useEffect, useState } from 'preact/hooks';
import { apiUrl, queryString } from '../api';
import { useUrlQuery } from '../urlstate';
import { lastHours } from '../format';
import { CopyLink, Section } from '../components/ui';
import { cleanDraft, Draft, draftOf, ServerField, TextField, TimeRange } from '../components/forms';

const FIELDS = ['since', 'until', 'server', 'domain'];

export function ReportsPage() {
  const { query, setAll } = useUrlQuery();
  const [defaults] = useState(() => lastHours(24));
  const current = query.since || query.until ? query : { ...defaults, ...query };
  const [draft, setDraft] = useState<Draft>(() => draftOf(current, FIELDS));
  useEffect(() => setDraft(draftOf(current, FIELDS)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const params = cleanDraft(draftOf(current, FIELDS));
  return (
    <div class="page">
      <h1>Reports</h1>
      <Section title="Report">
        <form class="filters" aria-label="Report filters" onSubmit={(e) => (e.preventDefault(), setAll(cleanDraft(draft)))}>
          <TimeRange draft={draft} set={set} />
          <ServerField draft={draft} set={set} />
          <TextField label="Domain" name="domain" draft={draft} set={set} placeholder="example.org" />
          <div class="buttons">
            <button type="submit" class="primary">Show report</button>
          </div>
        </form>
      </Section>
      <Section
        title="Summary"
        id="report"
        actions={
          <>
            <CopyLink href={`/reports${queryString(params)}`} label="Copy permalink" />
            <a class="button" href={apiUrl('/reports', { ...params, format: 'text' })} target="_blank" rel="noopener">
              Text
            </a>
            <a class="button" href={apiUrl('/reports', { ...params, format: 'json' })} target="_blank" rel="noopener">
              JSON
            </a>
          </>
        }
      >
        {/* The report as elsed renders it, with its own styles: the API lets this application
            frame that one answer, sandboxed, without scripts (an error shows as its JSON). */}
        <iframe class="report" title="Report" sandbox="" src={apiUrl('/reports', { ...params, format: 'html' })} />
      </Section>
    </div>
  );
}
