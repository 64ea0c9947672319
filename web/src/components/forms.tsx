// Form pieces for filters: a text field with its operator, a time range in the browser's zone, and
// the server picker. Filters are edited locally and applied to the URL on submit.

import { useEffect, useState } from 'preact/hooks';
import { fromLocalInput, toLocalInput, timeZone } from '../format';
import { useSession } from '../session';
import { OPERATORS, useUrlQuery } from '../urlstate';
import type { Query } from '../api';
import { Field, valueOf } from './ui';

export type Draft = Record<string, string>;

export function draftOf(query: Record<string, string>, keys: string[]): Draft {
  const draft: Draft = {};
  for (const key of keys) draft[key] = query[key] ?? '';
  return draft;
}

/**
 * A filter form over the URL's query: the draft of `fields` follows the URL (back, permalinks),
 * `submit` puts the draft in the URL (a new search, page 1), `clear` empties it.
 */
export function useFilterForm(fields: string[]) {
  const { query, setAll, patch } = useUrlQuery();
  const [draft, setDraft] = useState<Draft>(() => draftOf(query, fields));
  useEffect(() => setDraft(draftOf(query, fields)), [JSON.stringify(query)]);
  const set = (key: string, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const submit = (e: Event) => {
    e.preventDefault();
    setAll(cleanDraft(draft));
  };
  return { query, patch, draft, set, submit, clear: () => setAll({}) };
}

export function OperatorField(props: {
  label: string;
  name: string;
  draft: Draft;
  set: (key: string, value: string) => void;
  placeholder?: string;
}) {
  const op = `${props.name}_op`;
  return (
    <div class="field op-field">
      <label for={`f-${props.name}`}>{props.label}</label>
      <div class="op-row">
        <select
          aria-label={`${props.label} operator`}
          value={props.draft[op] || 'is'}
          onChange={(e) => props.set(op, valueOf(e))}
        >
          {OPERATORS.map(([value, text]) => (
            <option value={value} key={value}>
              {text}
            </option>
          ))}
        </select>
        <input
          id={`f-${props.name}`}
          type="text"
          value={props.draft[props.name]}
          placeholder={props.placeholder}
          onInput={(e) => props.set(props.name, valueOf(e))}
        />
      </div>
    </div>
  );
}

export function TextField(props: {
  label: string;
  name: string;
  draft: Draft;
  set: (key: string, value: string) => void;
  placeholder?: string;
  type?: string;
}) {
  return (
    <Field label={props.label}>
      <input
        type={props.type ?? 'text'}
        value={props.draft[props.name]}
        placeholder={props.placeholder}
        onInput={(e) => props.set(props.name, valueOf(e))}
      />
    </Field>
  );
}

export function SelectField(props: {
  label: string;
  name: string;
  draft: Draft;
  set: (key: string, value: string) => void;
  options: (string | [string, string])[];
  any?: string;
}) {
  return (
    <Field label={props.label}>
      <select value={props.draft[props.name]} onChange={(e) => props.set(props.name, valueOf(e))}>
        {props.any !== undefined && <option value="">{props.any}</option>}
        {props.options.map((o) => {
          const [value, text] = Array.isArray(o) ? o : [o, o];
          return (
            <option value={value} key={value}>
              {text}
            </option>
          );
        })}
      </select>
    </Field>
  );
}

export function ServerField(props: { draft: Draft; set: (key: string, value: string) => void; name?: string }) {
  const { servers } = useSession();
  return (
    <SelectField
      label="Server"
      name={props.name ?? 'server'}
      draft={props.draft}
      set={props.set}
      any="any server"
      options={servers.map((s) => [String(s.id), s.name] as [string, string])}
    />
  );
}

/** Since / until as datetime-local inputs; the draft keeps RFC 3339 UTC. */
export function TimeRange(props: { draft: Draft; set: (key: string, value: string) => void }) {
  return (
    <>
      <Field label={`Since (${timeZone})`}>
        <input
          type="datetime-local"
          value={toLocalInput(props.draft.since)}
          onInput={(e) => props.set('since', fromLocalInput(valueOf(e)))}
        />
      </Field>
      <Field label={`Until (${timeZone})`}>
        <input
          type="datetime-local"
          value={toLocalInput(props.draft.until)}
          onInput={(e) => props.set('until', fromLocalInput(valueOf(e)))}
        />
      </Field>
    </>
  );
}

/** Drops empty values and default operators, so permalinks stay short. */
export function cleanDraft(draft: Draft): Query {
  const out: Query = {};
  for (const [key, value] of Object.entries(draft)) {
    if (!value) continue;
    if (key.endsWith('_op')) {
      const field = key.slice(0, -3);
      if (value === 'is' || !draft[field]) continue;
    }
    out[key] = value.trim();
  }
  return out;
}
