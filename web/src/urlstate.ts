// A screen's filters live in the page URL's query, so every view is a permalink: reload, back,
// bookmark and copy all give the same results. The same query goes to the API unchanged.

import { useLocation } from 'preact-iso';
import { queryString, Query } from './api';

export function useUrlQuery() {
  const location = useLocation();
  const query = location.query ?? {};
  /** Replace the whole query (a new search), going back to page 1. */
  const setAll = (next: Query) => location.route(location.path + queryString(next));
  /** Change some keys and keep the others (sort, page). */
  const patch = (changes: Query, resetPage = true) => {
    const next: Query = { ...query, ...changes };
    if (resetPage && !('page' in changes)) delete next.page;
    location.route(location.path + queryString(next));
  };
  return { query, path: location.path, setAll, patch, url: location.url };
}

export const MESSAGE_STATES = [
  'received',
  'queued',
  'sent',
  'deferred',
  'bounced',
  'expired',
  'rejected',
  'held',
  'discarded',
  'deleted',
  'partial',
  'abandoned',
  'vanished',
];
export const FLOWS = ['inbound', 'outbound', 'internal', 'relayed', 'unknown'];
export const OPERATORS: [string, string][] = [
  ['is', 'is'],
  ['contains', 'contains'],
  ['starts', 'starts with'],
  ['not', 'is not'],
];
