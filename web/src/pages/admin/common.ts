// What the pages of accounts and groups share.

/** One value per line (or comma separated), trimmed, no empties. */
export function lines(text: string): string[] {
  return text
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function toggle<T>(list: T[], value: T, on: boolean): T[] {
  const rest = list.filter((v) => v !== value);
  return on ? [...rest, value] : rest;
}
