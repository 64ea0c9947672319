// Groups, the unit of scope: an administrator attaches users, servers and mail domains; a group
// user sees messages that touch one of the group's servers and one of its domains, and the raw
// lines of that mail. A server the group owns whole shows its members every line of it (daemon
// starts, warnings: lines of no message), which a shared server keeps for administrators.

import { useState } from 'preact/hooks';
import { api } from '../../api';
import type { Group, GroupChanges, User } from '../../api';
import { useAction, useApi } from '../../hooks';
import { useSession } from '../../session';
import { ErrorBox, Field, Section } from '../../components/ui';
import { AdminList } from './AdminList';
import { lines, toggle } from './common';

export function GroupsPage() {
  const groups = useApi<Group[]>('/admin/groups');
  const users = useApi<User[]>('/admin/users');
  const { servers } = useSession();
  const serverName = (id: number) => servers.find((s) => s.id === id)?.name ?? `#${id}`;
  const userLogin = (id: number) => users.data?.find((u) => u.id === id)?.login ?? `#${id}`;
  return (
    <AdminList<Group>
      heading="Groups"
      section="Groups"
      label="Groups"
      newLabel="New group"
      path="/admin/groups"
      list={groups}
      name={(g) => `group ${g.name}`}
      columns={[
        { key: 'n', label: 'Name', render: (g) => g.name },
        {
          key: 's',
          label: 'Servers',
          render: (g) =>
            g.server_ids.map((id) => serverName(id) + (g.whole_server_ids.includes(id) ? ' (whole)' : '')).join(', '),
        },
        { key: 'd', label: 'Domains', class: 'addr', render: (g) => g.domains.join(', ') },
        { key: 'u', label: 'Users', render: (g) => g.user_ids.map(userLogin).join(', ') },
      ]}
      editor={(group, done) => <GroupEditor group={group} users={users.data ?? []} done={done} />}
      deleteTitle="Delete group"
      deleteText={(group) => (
        <>
          Delete the group <strong>{group?.name}</strong>? Its users lose what it let them see.
        </>
      )}
    />
  );
}

function GroupEditor({ group, users, done }: { group: Group | null; users: User[]; done: () => void }) {
  const { servers } = useSession();
  const [name, setName] = useState(group?.name ?? '');
  const [serverIds, setServerIds] = useState<number[]>(group?.server_ids ?? []);
  const [wholeIds, setWholeIds] = useState<number[]>(group?.whole_server_ids ?? []);
  const [userIds, setUserIds] = useState<number[]>(group?.user_ids ?? []);
  const [domains, setDomains] = useState((group?.domains ?? []).join('\n'));
  const action = useAction();
  const save = async (e: Event) => {
    e.preventDefault();
    const body = {
      name,
      server_ids: serverIds,
      whole_server_ids: wholeIds.filter((id) => serverIds.includes(id)),
      user_ids: userIds,
      domains: lines(domains),
    } satisfies GroupChanges;
    const r = await action.run(() =>
      group ? api(`/admin/groups/${group.id}`, { method: 'PATCH', body }) : api('/admin/groups', { method: 'POST', body }),
    );
    if (r.ok) done();
  };
  const title = group ? `Edit group ${group.name}` : 'New group';
  return (
    <Section title={title} id="group-editor">
      <form class="filters" aria-label={title} onSubmit={save}>
        <Field label="Group name">
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Domains (one per line)" wide>
          <textarea rows={3} value={domains} onInput={(e) => setDomains(e.currentTarget.value)} />
        </Field>
        <fieldset class="wide">
          <legend>Servers</legend>
          {servers.map((s) => (
            <label class="check" key={String(s.id)}>
              <input type="checkbox" checked={serverIds.includes(s.id)} onChange={(e) => setServerIds(toggle(serverIds, s.id, e.currentTarget.checked))} /> {s.name}
            </label>
          ))}
        </fieldset>
        <fieldset class="wide">
          <legend>Owned whole: its members see every line there, not only those of their mail</legend>
          {servers
            .filter((s) => serverIds.includes(s.id))
            .map((s) => (
              <label class="check" key={String(s.id)}>
                <input
                  type="checkbox"
                  aria-label={`${s.name} whole`}
                  checked={wholeIds.includes(s.id)}
                  onChange={(e) => setWholeIds(toggle(wholeIds, s.id, e.currentTarget.checked))}
                />{' '}
                {s.name}
              </label>
            ))}
        </fieldset>
        <fieldset class="wide">
          <legend>Users</legend>
          {users.map((u) => (
            <label class="check" key={String(u.id)}>
              <input type="checkbox" checked={userIds.includes(u.id)} onChange={(e) => setUserIds(toggle(userIds, u.id, e.currentTarget.checked))} /> {u.login}
            </label>
          ))}
        </fieldset>
        <div class="buttons">
          <button type="submit" class="primary" disabled={action.busy}>
            {group ? 'Save' : 'Create'}
          </button>
          <button type="button" onClick={done}>
            Cancel
          </button>
        </div>
        <ErrorBox error={action.error} />
      </form>
    </Section>
  );
}
