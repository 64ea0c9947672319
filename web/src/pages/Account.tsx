// The caller's own account: who they are, what they may see, and the password change.

import { useState } from 'preact/hooks';
import { api } from '../api';
import { useAction } from '../hooks';
import { useSession } from '../session';
import { ErrorBox, Field, Section } from '../components/ui';

const MIN = 10;

export function AccountPage() {
  const { me, servers } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [done, setDone] = useState(false);
  const action = useAction();
  const problem =
    next && next.length < MIN ? `The new password needs at least ${MIN} characters.` : again && next !== again ? 'The two new passwords differ.' : '';
  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    if (problem) return action.setError(problem);
    const r = await action.run(() => api('/auth/password', { method: 'POST', body: { current, new: next } }));
    if (r.ok) {
      setDone(true);
      setCurrent('');
      setNext('');
      setAgain('');
    }
  };
  return (
    <div class="page">
      <h1>My account</h1>
      <Section title="About you">
        <dl class="facts">
          <dt>Login</dt>
          <dd>{me.login}</dd>
          <dt>Name</dt>
          <dd>{me.name}</dd>
          <dt>Role</dt>
          <dd>{{ admin: 'administrator', user: 'group user', enduser: 'end user' }[me.role]}</dd>
          {me.groups.length > 0 && (
            <>
              <dt>Groups</dt>
              <dd>{me.groups.map((g) => g.name).join(', ')}</dd>
            </>
          )}
          {me.addresses.length > 0 && (
            <>
              <dt>Addresses</dt>
              <dd class="addr">{me.addresses.join(', ')}</dd>
            </>
          )}
          {me.role !== 'enduser' && (
            <>
              <dt>Servers you can search</dt>
              <dd>{servers.map((s) => s.name).join(', ') || 'none'}</dd>
            </>
          )}
        </dl>
      </Section>
      <Section title="Change password">
        <form class="stack narrow" aria-label="Change password" onSubmit={submit}>
          <Field label="Current password">
            <input type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
          </Field>
          <Field label="New password">
            <input type="password" autocomplete="new-password" required minLength={MIN} value={next} onInput={(e) => setNext(e.currentTarget.value)} />
          </Field>
          <Field label="New password again">
            <input type="password" autocomplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
          </Field>
          <div class="buttons">
            <button type="submit" class="primary" disabled={action.busy || !current || !next || next !== again}>
              Change password
            </button>
          </div>
          {problem && <p class="hint">{problem}</p>}
          <ErrorBox error={action.error} />
          {done && (
            <p role="status" class="ok">
              Password changed. Your other sessions were ended.
            </p>
          )}
        </form>
      </Section>
    </div>
  );
}
