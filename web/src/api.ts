// The one door to elsed's JSON API (docs/api.md): JSON in and out, the CSRF header on every change,
// errors turned into ApiError with the server's message, and a 401 anywhere sends the user to login.

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onUnauthorized: () => void = () => {};

export function setCsrfToken(token: string | undefined) {
  csrfToken = token ?? '';
}

/** Called on any 401: the session ended (logout elsewhere, password change, expiry). */
export function setUnauthorizedHandler(handler: () => void) {
  onUnauthorized = handler;
}

export type Query = Record<string, string | number | boolean | undefined | null>;

/** `?a=1&b=x` from the non-empty values only, in the given order (stable permalinks). */
export function queryString(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export function apiUrl(path: string, query?: Query): string {
  return `${API}${path}${queryString(query)}`;
}

interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  let body: BodyInit | undefined;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      body,
      credentials: 'same-origin',
      signal: options.signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'The server cannot be reached.');
  }
  if (response.status === 401 && path !== '/auth/login') onUnauthorized();
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return undefined as T;
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('json')) return (await response.text()) as T;
  return (await response.json()) as T;
}

async function errorOf(response: Response): Promise<ApiError> {
  let message = '';
  let field: string | undefined;
  try {
    const body = await response.json();
    message = body?.error ?? '';
    field = body?.field ?? undefined;
  } catch {
    // Not JSON (a proxy's page, or an endpoint this server does not have yet).
  }
  if (!message) {
    message =
      {
        401: 'Not logged in.',
        403: 'Not allowed.',
        404: 'Not found (or outside what you may see).',
        413: 'Request too large.',
        429: 'Too many attempts; wait a moment.',
        503: 'The database is unavailable.',
      }[response.status] ?? `The server answered ${response.status}.`;
  }
  if (response.status === 429) {
    const retry = response.headers.get('Retry-After');
    if (retry) message += ` Try again in ${retry} s.`;
  }
  return new ApiError(response.status, message, field);
}

// The API's shapes: generated from its OpenAPI document (`npm run api-types`), never written here.
export type * from './api-types';
import type { PageLogLine } from './api-types';

/** A page of a list endpoint: `{total, total_capped, page, per_page, items}`. */
export type Page<T> = Omit<PageLogLine, 'items'> & { items: T[] };
