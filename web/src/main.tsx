// The application shell: session check, login gate, navigation, the quick search that is always
// there, and the routes. Paths are real URLs (elsed answers index.html for them), so each screen
// with its query is a permalink.

import { render } from 'preact';
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { api, ApiError, Me, Server, setCsrfToken, setUnauthorizedHandler } from './api';
import { SessionContext, isAdmin, useSession } from './session';
import { timeZone } from './format';
import { LoginPage } from './pages/Login';
import { SearchPage } from './pages/Search';
import { MessagePage } from './pages/Message';
import { BulkPage } from './pages/Bulk';
import { RejectsPage } from './pages/Rejects';
import { HistoryPage } from './pages/History';
import { LogsPage } from './pages/Logs';
import { LivePage } from './pages/Live';
import { StatsPage } from './pages/Stats';
import { ReportsPage } from './pages/Reports';
import { NdrPage, NdrsPage } from './pages/Ndrs';
import { GreylistPage } from './pages/Greylist';
import { ServerPage, ServersPage } from './pages/Servers';
import { OverviewPage } from './pages/Overview';
import { AlertPage, AlertsPage } from './pages/Alerts';
import { AccountPage } from './pages/Account';
import { UsersPage } from './pages/admin/Users';
import { GroupsPage } from './pages/admin/Groups';
import { AuditPage } from './pages/admin/Audit';
import './style.css';

function App() {
  const [me, setMeState] = useState<Me | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>();
  const [servers, setServers] = useState<Server[]>([]);

  // Whether a session began in this page: only then does a 401 mean that it ended (a first
  // visit's session check answers 401 too, and nothing ended).
  const signedIn = useRef(false);

  const setMe = useCallback((next: Me | null) => {
    signedIn.current = next !== null;
    setCsrfToken(next?.csrf_token);
    setMeState(next);
  }, []);
  const loadServers = useCallback(() => {
    api<Server[]>('/servers')
      .then(setServers)
      .catch(() => setServers([]));
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      if (signedIn.current) setNotice('Your session ended; please log in again.');
      setMe(null);
    });
    api<Me>('/auth/me')
      .then((m) => setMe(m))
      .catch((e: ApiError) => {
        if (e.status !== 401) setNotice(`Cannot check the session: ${e.message}`);
        setMe(null);
      });
  }, [setMe]);
  useEffect(() => {
    if (me) loadServers();
  }, [me, loadServers]);

  if (me === undefined) return <div class="loading">Loading…</div>;
  if (me === null)
    return (
      <LoginPage
        notice={notice}
        onLogin={(user) => {
          setNotice(undefined);
          setMe(user);
        }}
      />
    );
  return (
    <SessionContext.Provider value={{ me, servers, setMe, reloadServers: loadServers }}>
      <Shell>
        <Router>
          <Route path="/" component={Home} />
          <Route path="/alerts" component={AlertsPage} />
          <Route path="/alerts/:id" component={AlertPage} />
          <Route path="/search" component={SearchPage} />
          <Route path="/bulk" component={BulkPage} />
          <Route path="/rejects" component={RejectsPage} />
          <Route path="/history" component={HistoryPage} />
          <Route path="/messages/:id" component={MessagePage} />
          <Route path="/logs" component={LogsPage} />
          <Route path="/live" component={LivePage} />
          <Route path="/stats" component={StatsPage} />
          <Route path="/reports" component={ReportsPage} />
          <Route path="/ndrs" component={NdrsPage} />
          <Route path="/ndrs/:id" component={NdrPage} />
          <Route path="/greylist" component={GreylistPage} />
          <Route path="/servers" component={ServersPage} />
          <Route path="/servers/:id" component={ServerPage} />
          <Route path="/account" component={AccountPage} />
          <Route path="/admin/users" component={UsersPage} />
          <Route path="/admin/groups" component={GroupsPage} />
          <Route path="/admin/audit" component={AuditPage} />
          <Route default component={NotFound} />
        </Router>
      </Shell>
    </SessionContext.Provider>
  );
}

/** The landing page: the overview, except for end users (their view is their mail: the search). */
function Home() {
  const { me } = useSession();
  const location = useLocation();
  useEffect(() => {
    if (me.role === 'enduser') location.route('/search', true);
  }, []);
  return me.role === 'enduser' ? null : <OverviewPage />;
}

function NotFound() {
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        This page does not exist. <a href="/search">Go to the search.</a>
      </p>
    </div>
  );
}

const NAV: { title: string; links: [string, string][]; who?: (me: Me) => boolean }[] = [
  {
    title: 'Fleet',
    links: [
      ['/', 'Overview'],
      ['/alerts', 'Alerts'],
    ],
    who: (me) => me.role !== 'enduser',
  },
  {
    title: 'Search',
    links: [
      ['/search', 'Messages'],
      ['/bulk', 'Bulk search'],
      ['/rejects', 'Rejects'],
      ['/history', 'History'],
    ],
  },
  {
    title: 'Watch',
    links: [
      ['/logs', 'Logs'],
      ['/live', 'Live'],
    ],
    who: (me) => me.role !== 'enduser',
  },
  {
    title: 'Statistics',
    links: [
      ['/stats', 'Dashboard'],
      ['/reports', 'Reports'],
      ['/ndrs', 'NDRs'],
      ['/greylist', 'Greylisting'],
      ['/servers', 'Servers'],
    ],
    who: (me) => me.role !== 'enduser',
  },
  {
    title: 'Administration',
    links: [
      ['/admin/users', 'Users'],
      ['/admin/groups', 'Groups'],
      ['/admin/audit', 'Audit log'],
    ],
    who: isAdmin,
  },
];

function Shell({ children }: { children: ComponentChildren }) {
  const { me, setMe } = useSession();
  const location = useLocation();
  const [quick, setQuick] = useState(location.path === '/search' ? location.query.q ?? '' : '');
  const logout = async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } catch {
      // The session is gone either way.
    }
    setMe(null);
    location.route('/', true);
  };
  const search = (e: Event) => {
    e.preventDefault();
    const q = quick.trim();
    if (q) location.route(`/search?q=${encodeURIComponent(q)}`);
  };
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="/">
          ELSE
        </a>
        <form role="search" class="quick" onSubmit={search}>
          <input
            type="search"
            aria-label="Quick search"
            placeholder="Message-ID or queue id"
            value={quick}
            onInput={(e) => setQuick(e.currentTarget.value)}
          />
          <button type="submit">Find</button>
        </form>
        <span class="spacer" />
        <span class="muted small" title="Times are shown in this time zone">
          {timeZone}
        </span>
        <a href="/account" class="user">
          {me.name || me.login} ({me.role})
        </a>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <nav class="sidebar" aria-label="Main">
        {NAV.filter((s) => !s.who || s.who(me)).map((section) => (
          <div key={section.title}>
            <h2>{section.title}</h2>
            <ul>
              {section.links.map(([href, text]) => (
                <li key={href}>
                  <a href={href} aria-current={location.path === href || location.path.startsWith(`${href}/`) ? 'page' : undefined}>
                    {text}
                  </a>
                </li>
              ))}
            </ul>
          </div>
        ))}
        <div>
          <h2>Me</h2>
          <ul>
            <li>
              <a href="/account" aria-current={location.path === '/account' ? 'page' : undefined}>
                Account and password
              </a>
            </li>
          </ul>
        </div>
      </nav>
      <main class="content">{children}</main>
    </div>
  );
}

render(
  <LocationProvider scope={/^\/(?!api\/|healthz|metrics)/}>
    <App />
  </LocationProvider>,
  document.getElementById('app')!,
);
