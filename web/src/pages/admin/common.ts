// Shapes of the admin endpoints (docs/api.md, "Accounts").

export interface User {
  id: number | string;
  login: string;
  name?: string;
  role: string;
  disabled?: boolean;
  groups?: (number | string)[];
  addresses?: string[];
  last_login?: string | null;
}

export interface Group {
  id: number | string;
  name: string;
  server_ids?: (number | string)[];
  domains?: string[];
  user_ids?: (number | string)[];
}

/** One value per line (or comma separated), trimmed, no empties. */
export function lines(text: string): string[] {
  return text
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function toggle<T>(list: T[], value: T, on: boolean): T[] {
  const rest = list.filter((v) => String(v) !== String(value));
  return on ? [...rest, value] : rest;
}
