import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { HOME, Link, usePath } from './nav.ts';
import { Api, GraphQLRequestError, storedKey, storeKey } from './graphql.ts';
import { VIEWER } from './queries.ts';
import type { Role } from './types.ts';
import { ApiContext } from './api-context.ts';
import { KeyPrompt } from './pages/KeyPrompt.tsx';
import { FleetPage } from './pages/Fleet.tsx';
import { TenantPage } from './pages/Tenant.tsx';
import './styles.css';

interface Viewer { role: Role; keyName: string; tenant: { slug: string } | null }

function App() {
  const [key, setKey] = useState(storedKey());
  const [reason, setReason] = useState<string | null>(null);
  const [viewer, setViewer] = useState<Viewer | null>(null);
  const path = usePath();

  const api = useMemo(
    () =>
      key
        ? new Api(key, (why) => {
            storeKey(null);
            setViewer(null);
            setReason(why);
            setKey(null);
          })
        : null,
    [key],
  );
  useEffect(() => () => api?.dispose(), [api]);

  useEffect(() => {
    if (!api) return;
    let live = true;
    api
      .request<{ viewer: Viewer }>(VIEWER)
      .then((data) => live && setViewer(data.viewer))
      .catch((err: Error) => {
        if (!live) return;
        storeKey(null);
        setReason(err.message);
        setKey(null);
      });
    return () => {
      live = false;
    };
  }, [api]);

  if (!api || !key)
    return (
      <KeyPrompt
        reason={reason}
        onKey={(k) => {
          storeKey(k);
          setReason(null);
          setKey(k);
        }}
      />
    );
  if (!viewer) return <p class="loading">Checking the key…</p>;

  const signOut = () => {
    storeKey(null);
    setViewer(null);
    setKey(null);
  };
  const opened = /^\/dashboard\/tenants\/([^/]+)\/?$/.exec(path)?.[1];
  const admin = viewer.role === 'ADMIN';
  const tenantSlug = admin ? (opened ? decodeURIComponent(opened) : null) : (viewer.tenant?.slug ?? null);
  return (
    <ApiContext.Provider value={api}>
      <header class="top">
        <Link to={HOME} class="brand">Tenantry</Link>
        {admin && tenantSlug && <Link to={HOME} data-testid="back-to-fleet">← Fleet</Link>}
        <span class="who" data-testid="viewer">
          {viewer.keyName} · {viewer.role}
        </span>
        <button type="button" onClick={signOut} data-testid="sign-out">
          Forget key
        </button>
      </header>
      <main>
        {tenantSlug ? (
          <TenantPage slug={tenantSlug} role={viewer.role} />
        ) : admin ? (
          <FleetPage />
        ) : (
          <p data-testid="no-tenant">This key belongs to no tenant.</p>
        )}
      </main>
    </ApiContext.Provider>
  );
}

// An API error a panel did not handle is shown where it matters (a refused key: the prompt), not as an uncaught error.
addEventListener('unhandledrejection', (event) => {
  if (event.reason instanceof GraphQLRequestError) event.preventDefault();
});

render(<App />, document.getElementById('app')!);
