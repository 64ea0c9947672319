// What the administrators' lists of accounts and groups share: the table with an edit and a
// delete button per row, the editor of one row (or of a new one), and the confirmation before a
// delete. Each page gives its columns, its editor and its words.

import { ComponentChildren, Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../../api';
import { Loaded, useAction } from '../../hooks';
import { Column, ConfirmDialog, DataTable, ErrorBox, Loading, Section } from '../../components/ui';

export interface AdminListProps<T extends { id: number }> {
  /** The page's heading and the list's section title. */
  heading: string;
  section: string;
  /** What the table is called (its accessible name) and the button that creates one. */
  label: string;
  newLabel: string;
  /** The endpoint of the list; one row is `${path}/${id}`. */
  path: string;
  list: Loaded<T[]>;
  columns: Column<T>[];
  /** How the buttons of a row name it: `Edit ${name(row)}`, `Delete ${name(row)}`. */
  name: (row: T) => string;
  /** The editor of `row` (null: a new one); `done` closes it and reloads the list. */
  editor: (row: T | null, done: () => void) => ComponentChildren;
  deleteTitle: string;
  deleteText: (row: T | null) => ComponentChildren;
}

export function AdminList<T extends { id: number }>(props: AdminListProps<T>) {
  const { list } = props;
  const [editing, setEditing] = useState<T | 'new' | null>(null);
  const [deleting, setDeleting] = useState<T | null>(null);
  const action = useAction();
  const remove = async () => {
    const row = deleting;
    setDeleting(null);
    if (!row) return;
    await action.run(() => api(`${props.path}/${row.id}`, { method: 'DELETE' }));
    list.reload();
  };
  const actions: Column<T> = {
    key: 'x',
    label: 'Actions',
    render: (row) => (
      <>
        <button type="button" class="link" aria-label={`Edit ${props.name(row)}`} onClick={() => setEditing(row)}>
          edit
        </button>{' '}
        <button type="button" class="link danger" aria-label={`Delete ${props.name(row)}`} onClick={() => setDeleting(row)}>
          delete
        </button>
      </>
    ),
  };
  const done = () => {
    setEditing(null);
    list.reload();
  };
  return (
    <div class="page">
      <h1>{props.heading}</h1>
      <Section
        title={props.section}
        actions={
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            {props.newLabel}
          </button>
        }
      >
        <ErrorBox error={list.error ?? action.error} />
        <Loading when={list.loading} />
        <DataTable label={props.label} rows={list.data ?? []} rowKey={(row) => String(row.id)} columns={[...props.columns, actions]} />
      </Section>
      {editing && (
        <Fragment key={editing === 'new' ? 'new' : String(editing.id)}>
          {props.editor(editing === 'new' ? null : editing, done)}
        </Fragment>
      )}
      <ConfirmDialog
        open={deleting !== null}
        title={props.deleteTitle}
        confirmLabel="Delete"
        onConfirm={remove}
        onCancel={() => setDeleting(null)}
      >
        {props.deleteText(deleting)}
      </ConfirmDialog>
    </div>
  );
}
