// Who is logged in, for every screen: the `Me` of /auth/me, and the servers the caller may see.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Me, Server } from './api';

export interface Session {
  me: Me;
  servers: Server[];
  setMe: (me: Me | null) => void;
  reloadServers: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a session');
  return session;
}

export const isAdmin = (me: Me) => me.role === 'admin';
