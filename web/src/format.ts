// How values look on screen. Times arrive in UTC (RFC 3339) and are shown in the browser's zone.

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

const dateTime = new Intl.DateTimeFormat('sv-SE', {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/** `2024-03-14 11:00:00` in the browser's time zone (ISO-like, sortable, unambiguous). */
export function formatTime(value: string | null | undefined): string {
  if (!value) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return dateTime.format(date);
}

/** Value for an `<input type="datetime-local">` from an RFC 3339 instant. */
export function toLocalInput(value: string | undefined): string {
  if (!value) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return dateTime.format(date).replace(' ', 'T').slice(0, 16);
}

/** RFC 3339 UTC from an `<input type="datetime-local">` value (read in the browser's zone). */
export function fromLocalInput(value: string): string {
  if (!value) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return date.toISOString().replace('.000Z', 'Z');
}

export function formatBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1000 && unit < units.length - 1) {
    v /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '';
  return value.toLocaleString();
}

/** Seconds as `0.4 s`, `12 s`, `3 min 20 s`, `2 h 5 min`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '';
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
}

/** `<a@b>` shown without the brackets users never type. */
export function bare(messageId: string | null | undefined): string {
  return (messageId ?? '').replace(/^<(.*)>$/, '$1');
}

/** The last `hours` hours, as the default range of dashboards. */
export function lastHours(hours: number): { since: string; until: string } {
  const until = new Date();
  const since = new Date(until.getTime() - hours * 3600 * 1000);
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { since: iso(since), until: iso(until) };
}
