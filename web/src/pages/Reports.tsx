// The pflogsumm-style report of a range, per server or domain, as elsed renders it (HTML), with the
// text and JSON forms one click away.

import { useEffect, useState } from 'preact/hooks';
import { apiUrl, queryString } from '../api';
import { useUrlQuery } from '../urlstate';
import { useApi } from '../hooks';
import { lastHours } from '../format';
import { CopyLink, ErrorBox, Loading, Section } from '../components/ui';
import { cleanDraft, Draft, draftOf, ServerField, TextField, TimeRange } from '../components/forms';

const FIELDS = ['since', 'until', 'server', 'domain'];

/**
 * The body of elsed's HTML report, to show inside the page: the API forbids framing its answers,
 * and the page's CSP would drop the report's own styles and scripts anyway, so only its markup is
 * kept (tables, headings) and the application's styles apply.
 */
function reportBody(html: string): string {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  doc.querySelectorAll('script, style, link, iframe, object, embed').forEach((el) => el.remove());
  doc.querySelectorAll('*').forEach((el) => {
    for (const attr of [...el.attributes]) if (attr.name.startsWith('on') || attr.name === 'style') el.removeAttribute(attr.name);
  });
  return doc.body.innerHTML;
}

export function ReportsPage() {
  const { query, setAll } = useUrlQuery();
  const [defaults] = useState(() => lastHours(24));
  const current = query.since || query.until ? query : { ...defaults, ...query };
  const [draft, setDraft] = useState<Draft>(() => draftOf(current, FIELDS));
  useEffect(() => setDraft(draftOf(current, FIELDS)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const params = cleanDraft(draftOf(current, FIELDS));
  const report = useApi<string>('/reports', { ...params, format: 'html' });
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
        <ErrorBox error={report.error} />
        <Loading when={report.loading} />
        {report.data !== undefined && (
          <article class="report" aria-label="Report" dangerouslySetInnerHTML={{ __html: reportBody(report.data) }} />
        )}
      </Section>
    </div>
  );
}
