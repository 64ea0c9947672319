// The newest events as they arrive: GET /live every 2 s from the last cursor, newest first.

import { useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import type { LiveAnswer, LogLine } from '../api';
import { useInterval } from '../hooks';
import { LogTable } from '../components/loglines';
import { ErrorBox, Section } from '../components/ui';

const KEEP = 500;

export function LivePage() {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [filter, setFilter] = useState('');
  const cursor = useRef<string | undefined>(undefined);

  useInterval(
    async () => {
      try {
        const answer = await api<LiveAnswer>('/live', { query: { after: cursor.current } });
        setError(undefined);
        cursor.current = answer.cursor;
        if (answer.events.length > 0) {
          const newestFirst = [...answer.events].sort((a, b) => b.ts.localeCompare(a.ts));
          setLines((old) => [...newestFirst, ...old].slice(0, KEEP));
        }
      } catch (e) {
        setError(e as ApiError);
      }
    },
    2000,
    !paused,
  );
  const needle = filter.toLowerCase();
  const shown = needle ? lines.filter((l) => l.raw.toLowerCase().includes(needle)) : lines;
  return (
    <div class="page">
      <h1>Live</h1>
      <Section
        title="Newest events"
        actions={
          <>
            <label class="inline">
              Filter <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
            </label>
            <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
              {paused ? 'Resume' : 'Pause'}
            </button>
          </>
        }
      >
        <p class="muted" role="status">
          {paused ? 'Paused.' : 'Updating every 2 seconds.'} {lines.length} events kept (last {KEEP}).
        </p>
        <ErrorBox error={error} />
        <LogTable rows={shown} label="Live events" />
      </Section>
    </div>
  );
}
