// The login screen: the only one shown before a session exists.

import { useState } from 'preact/hooks';
import { api, LoginAnswer, Me } from '../api';
import { useAction } from '../hooks';
import { ErrorBox, Field } from '../components/ui';

export function LoginPage({ onLogin, notice }: { onLogin: (me: Me) => void; notice?: string }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    const r = await action.run(() => api<LoginAnswer>('/auth/login', { method: 'POST', body: { login, password } }));
    if (r.ok) onLogin(r.value.user);
  };
  return (
    <main class="login">
      <form class="login-box" aria-label="Log in" onSubmit={submit}>
        <h1>
          <span class="brand">ELSE</span> mail logs
        </h1>
        {notice && <p class="hint">{notice}</p>}
        <Field label="Login">
          <input autocomplete="username" required autofocus value={login} onInput={(e) => setLogin(e.currentTarget.value)} />
        </Field>
        <Field label="Password">
          <input type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary" disabled={action.busy}>
          Log in
        </button>
        <ErrorBox error={action.error} />
      </form>
    </main>
  );
}
