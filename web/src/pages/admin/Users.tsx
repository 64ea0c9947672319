// Administration of accounts: list, create, edit (role, groups, addresses, disable, new password),
// delete behind a confirmation. Every change is audited by the server.

import { useState } from 'preact/hooks';
import { api } from '../../api';
import type { Group, NewUser, Role, User, UserChanges } from '../../api';
import { useAction, useApi } from '../../hooks';
import { formatTime } from '../../format';
import { ErrorBox, Field, Section } from '../../components/ui';
import { AdminList } from './AdminList';
import { lines, toggle } from './common';

const ROLES: [Role, string][] = [
  ['admin', 'administrator'],
  ['user', 'group user'],
  ['enduser', 'end user'],
];

export function UsersPage() {
  const users = useApi<User[]>('/admin/users');
  const groups = useApi<Group[]>('/admin/groups');
  const groupName = (id: number) => groups.data?.find((g) => g.id === id)?.name ?? `#${id}`;
  return (
    <AdminList<User>
      heading="Users"
      section="Accounts"
      label="Users"
      newLabel="New user"
      path="/admin/users"
      list={users}
      name={(u) => u.login}
      columns={[
        { key: 'l', label: 'Login', render: (u) => u.login },
        { key: 'n', label: 'Name', render: (u) => u.name },
        { key: 'r', label: 'Role', render: (u) => ROLES.find(([r]) => r === u.role)?.[1] ?? u.role },
        { key: 'g', label: 'Groups', render: (u) => u.groups.map(groupName).join(', ') },
        { key: 'a', label: 'Addresses', class: 'addr', render: (u) => u.addresses.join(', ') },
        { key: 'd', label: 'Status', render: (u) => (u.disabled ? 'disabled' : 'active') },
        { key: 'll', label: 'Last login', class: 'nowrap', render: (u) => formatTime(u.last_login) },
      ]}
      editor={(user, done) => <UserEditor user={user} groups={groups.data ?? []} done={done} />}
      deleteTitle="Delete user"
      deleteText={(user) => (
        <>
          Delete the account <strong>{user?.login}</strong>? Its sessions end and its search history goes.
        </>
      )}
    />
  );
}

function UserEditor({ user, groups, done }: { user: User | null; groups: Group[]; done: () => void }) {
  const [login, setLogin] = useState(user?.login ?? '');
  const [name, setName] = useState(user?.name ?? '');
  const [role, setRole] = useState<Role>(user?.role ?? 'user');
  const [password, setPassword] = useState('');
  const [disabled, setDisabled] = useState(user?.disabled ?? false);
  const [memberOf, setMemberOf] = useState<number[]>(user?.groups ?? []);
  const [addresses, setAddresses] = useState((user?.addresses ?? []).join('\n'));
  const action = useAction();
  const save = async (e: Event) => {
    e.preventDefault();
    const fields = { name, role, groups: memberOf, addresses: lines(addresses) };
    const r = await action.run(() =>
      user
        ? api(`/admin/users/${user.id}`, {
            method: 'PATCH',
            body: { ...fields, disabled, password: password || undefined } satisfies UserChanges,
          })
        : api('/admin/users', { method: 'POST', body: { ...fields, login, password } satisfies NewUser }),
    );
    if (r.ok) done();
  };
  const title = user ? `Edit user ${user.login}` : 'New user';
  return (
    <Section title={title} id="user-editor">
      <form class="filters" aria-label={title} onSubmit={save}>
        <Field label="Login">
          <input required disabled={!!user} value={login} onInput={(e) => setLogin(e.currentTarget.value)} autocomplete="off" />
        </Field>
        <Field label="Name">
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.map(([r, text]) => (
              <option key={r} value={r}>
                {text}
              </option>
            ))}
          </select>
        </Field>
        <Field label={user ? 'New password (leave empty to keep)' : 'Password'}>
          <input type="password" autocomplete="new-password" required={!user} minLength={10} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        {user && (
          <label class="check">
            <input type="checkbox" checked={disabled} onChange={(e) => setDisabled(e.currentTarget.checked)} /> Disabled
          </label>
        )}
        <fieldset class="wide">
          <legend>Groups</legend>
          {groups.length === 0 && <span class="muted">No group yet.</span>}
          {groups.map((g) => (
            <label class="check" key={String(g.id)}>
              <input
                type="checkbox"
                checked={memberOf.includes(g.id)}
                onChange={(e) => setMemberOf(toggle(memberOf, g.id, e.currentTarget.checked))}
              />{' '}
              {g.name}
            </label>
          ))}
        </fieldset>
        {role === 'enduser' && (
          <Field label="Mail addresses (one per line)" wide>
            <textarea rows={3} value={addresses} onInput={(e) => setAddresses(e.currentTarget.value)} />
          </Field>
        )}
        <div class="buttons">
          <button type="submit" class="primary" disabled={action.busy}>
            {user ? 'Save' : 'Create'}
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
