// Small building blocks shared by the screens: messages, pager, sortable table, fields, dialogs.

import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { apiUrl, queryString } from '../api';
import type { ApiError, Page, Query } from '../api';
import type { Loaded } from '../hooks';
import { formatNumber } from '../format';

export function ErrorBox({ error }: { error?: ApiError | string | null }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : error.message;
  return (
    <div class="error" role="alert">
      {text}
    </div>
  );
}

export function Loading({ when }: { when: boolean }) {
  return when ? (
    <div class="loading" role="status" aria-live="polite">
      Loading…
    </div>
  ) : null;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function Section(props: { title: string; actions?: ComponentChildren; children: ComponentChildren; id?: string }) {
  const headingId = `h-${props.id ?? props.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section class="panel" aria-labelledby={headingId}>
      <header class="panel-head">
        <h2 id={headingId}>{props.title}</h2>
        {props.actions && <div class="panel-actions">{props.actions}</div>}
      </header>
      <div class="panel-body">{props.children}</div>
    </section>
  );
}

/** "1–50 of 1 234" and previous/next buttons; says so when the search stopped at its time limit. */
export function Pager<T>({ page, onPage }: { page: Page<T>; onPage: (p: number) => void }) {
  const perPage = page.per_page || page.items.length || 1;
  const first = page.total === 0 ? 0 : (page.page - 1) * perPage + 1;
  const last = (page.page - 1) * perPage + page.items.length;
  const pages = Math.max(1, Math.ceil(page.total / perPage));
  return (
    <nav class="pager" aria-label="Pages">
      <span class="count" role="status">
        {formatNumber(first)}–{formatNumber(last)} of {page.total_capped ? 'more than ' : ''}
        {formatNumber(page.total)}
      </span>
      <button type="button" disabled={page.page <= 1} onClick={() => onPage(page.page - 1)}>
        ‹ Previous
      </button>
      <span>
        page {page.page} / {pages}
      </span>
      <button
        type="button"
        disabled={page.cut_short || (page.page >= pages && !page.total_capped)}
        onClick={() => onPage(page.page + 1)}
      >
        Next ›
      </button>
      {page.cut_short && <CutShort found />}
    </nav>
  );
}

/** Said when a search stopped at the server's time limit (`cut_short`): more may exist. */
export function CutShort({ found }: { found: boolean }) {
  return (
    <p class="cut-short" role="alert">
      The search stopped at its time limit{found ? ': these are the first rows it found, in this order,' : ' before finding a row,'}{' '}
      and more may exist. Narrow it (an exact address, a shorter time range) to see them all.
    </p>
  );
}

export interface Column<T> {
  key: string;
  label: string;
  /** The API's sort field when the column sorts on the server. */
  sort?: string;
  render: (row: T) => ComponentChildren;
  class?: string;
}

/** A table whose sortable headers set `sort` (`field` / `-field`) as the API expects. */
export function DataTable<T>(props: {
  label: string;
  columns: Column<T>[];
  rows: T[];
  sort?: string;
  onSort?: (sort: string) => void;
  rowKey?: (row: T, index: number) => string;
}) {
  const current = props.sort ?? '';
  return (
    <div class="table-wrap">
      <table aria-label={props.label}>
        <thead>
          <tr>
            {props.columns.map((c) => {
              if (!c.sort || !props.onSort) return <th scope="col" key={c.key} class={c.class}>{c.label}</th>;
              const ascending = current === c.sort;
              const descending = current === `-${c.sort}`;
              const next = descending ? c.sort : `-${c.sort}`;
              return (
                <th
                  scope="col"
                  key={c.key}
                  class={c.class}
                  aria-sort={ascending ? 'ascending' : descending ? 'descending' : 'none'}
                >
                  <button type="button" class="sort" onClick={() => props.onSort!(next)}>
                    {c.label}
                    <span aria-hidden="true">{ascending ? ' ▲' : descending ? ' ▼' : ''}</span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row, i) => (
            <tr key={props.rowKey ? props.rowKey(row, i) : i}>
              {props.columns.map((c) => (
                <td key={c.key} class={c.class}>
                  {c.render(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Field(props: { label: string; children: ComponentChildren; wide?: boolean }) {
  return (
    <label class={props.wide ? 'field wide' : 'field'}>
      <span>{props.label}</span>
      {props.children}
    </label>
  );
}

export function StatusBadge({ value }: { value?: string | null }) {
  if (!value) return null;
  return <span class={`badge st-${value.replace(/[^a-z_]/gi, '')}`}>{value}</span>;
}

/** A modal confirmation (native <dialog>): what will happen, and Confirm / Cancel. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel?: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-label={props.title} onCancel={props.onCancel} class="confirm">
      <h2>{props.title}</h2>
      <div>{props.children}</div>
      <div class="buttons">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm}>
          {props.confirmLabel ?? 'Confirm'}
        </button>
      </div>
    </dialog>
  );
}

/**
 * The results of a list search: the permalink of the page and the CSV export of the API's `path`
 * with `query`, errors, the pager, and the items as `children` shows them.
 */
export function ResultsSection<T>(props: {
  title: string;
  /** The browser page and the API endpoint of the search. */
  page: string;
  path: string;
  query: Query;
  results: Loaded<Page<T>>;
  empty: string;
  onPage: (page: number) => void;
  children: (items: T[]) => ComponentChildren;
}) {
  const { results } = props;
  return (
    <Section
      title={props.title}
      actions={
        <>
          <CopyLink href={`${props.page}${queryString(props.query)}`} label="Copy permalink" />
          <a class="button" download href={apiUrl(props.path, { ...props.query, page: undefined, format: 'csv' })}>
            Export CSV
          </a>
        </>
      }
    >
      <ErrorBox error={results.error} />
      <Loading when={results.loading} />
      {results.data && results.data.items.length === 0 && (results.data.cut_short ? <CutShort found={false} /> : <Empty>{props.empty}</Empty>)}
      {results.data && results.data.items.length > 0 && (
        <>
          <Pager page={results.data} onPage={props.onPage} />
          {props.children(results.data.items)}
        </>
      )}
    </Section>
  );
}

export function CopyLink({ href, label = 'Copy link' }: { href: string; label?: string }) {
  const onClick = async () => {
    const url = new URL(href, location.origin).toString();
    try {
      await navigator.clipboard.writeText(url);
    } catch {
      window.prompt('Permalink', url);
    }
  };
  return (
    <button type="button" onClick={onClick} title={new URL(href, location.origin).toString()}>
      {label}
    </button>
  );
}

export type InputEvent = JSX.TargetedEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, Event>;
export const valueOf = (e: InputEvent) => e.currentTarget.value;
