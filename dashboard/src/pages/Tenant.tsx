import { useEffect, useState } from 'preact/hooks';
import { useApi } from '../api-context.ts';
import { ROTATE, TENANT_AUDIT, TENANT_ENDPOINTS, TENANT_PAGE, TENANT_SESSIONS, TENANT_USAGE, TENANT_USAGE_HISTORY, TERMINATE } from '../queries.ts';
import type { QuotaSummary, Role, Usage, UsagePoint } from '../types.ts';
import { duration, when, who } from '../format.ts';
import { Gauge } from '../components/Gauge.tsx';
import { MinuteChart } from '../components/TimeChart.tsx';
import { ReadOnlyCredentialsPanel } from '../components/ReadOnlyCredentials.tsx';

interface Endpoint { host: string; port: number; database: string; user: string }
interface TenantInfo {
  slug: string; displayName: string; status: string; databaseName: string; roleName: string; createdAt: string;
  cluster: { name: string };
  quota: QuotaSummary | null;
  usage: Usage | null;
  schemaVersion: { version: string; expectedVersion: string | null; compatibility: string; appliedAt: string } | null;
  extensions: { name: string; installedVersion: string | null; requiredVersion: string | null; availableVersion: string | null; status: string }[];
}

/** One tenant: what its own key sees, or an admin opening it from the fleet. */
export function TenantPage({ slug, role }: { slug: string; role: Role }) {
  const api = useApi();
  const [tenant, setTenant] = useState<TenantInfo | null | undefined>(undefined);
  const [usage, setUsage] = useState<Usage | null>(null);
  const [refresh, setRefresh] = useState(0);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.request<{ tenant: TenantInfo | null }>(TENANT_PAGE, { slug }).then(
      (d) => {
        setTenant(d.tenant);
        if (d.tenant?.usage) setUsage(d.tenant.usage);
      },
      (err: Error) => setError(err.message),
    );
  }, [slug, refresh]);
  useEffect(() => api.subscribe<{ connectionUsage: Usage }>(TENANT_USAGE, { slug }, (d) => setUsage(d.connectionUsage)), [slug]);

  if (error) return <p class="error" data-testid="tenant-error">{error}</p>;
  if (tenant === undefined) return <p class="loading">Loading {slug}…</p>;
  if (tenant === null) return <p class="error" data-testid="tenant-error">No tenant {slug} for this key.</p>;
  const canManage = role === 'ADMIN' || role === 'TENANT_ADMIN';
  return (
    <div class="tenant" data-testid="tenant-page">
      <h1>
        {tenant.displayName} <small>{tenant.slug} · {tenant.status} · cluster {tenant.cluster.name}</small>
      </h1>
      <div class="columns">
        <QuotaCard usage={usage} quota={tenant.quota} />
        <ConnectionDetails tenant={tenant} canRotate={canManage} onRotated={() => setRefresh((n) => n + 1)} />
      </div>
      <UsageCharts slug={slug} />
      <Sessions slug={slug} canTerminate={canManage} usage={usage} />
      <ReadOnlyCredentialsPanel slug={slug} canManage={canManage} />
      <div class="columns">
        <SchemaCard tenant={tenant} />
        <AuditTrail slug={slug} usage={usage} />
      </div>
    </div>
  );
}

function QuotaCard({ usage, quota }: { usage: Usage | null; quota: QuotaSummary | null }) {
  return (
    <section class="panel quota-card" data-testid="quota-card">
      <h3>Connections</h3>
      {usage ? (
        <>
          <p class="big" data-testid="quota-card-text">
            Your tenant has {usage.current}/{usage.max} connections
          </p>
          <Gauge percent={usage.usagePercent} testId="tenant-gauge" />
          <p>
            24-hour peak <b data-testid="quota-card-peak">{usage.peak24h}</b> · pooled {usage.pooled ?? '–'} · direct {usage.direct ?? '–'} · pooler idle {usage.poolerIdle ?? '–'}
          </p>
        </>
      ) : (
        <p>No usage (the tenant is not active).</p>
      )}
      {quota && (
        <p class="muted">
          Quota {quota.maxConnections}, set {when(quota.updatedAt)} by {who(quota.updatedBy)}
        </p>
      )}
    </section>
  );
}

const MASK = '••••••';
const url = (e: Endpoint, password: string) => `postgresql://${encodeURIComponent(e.user)}:${password}@${e.host}:${e.port}/${encodeURIComponent(e.database)}`;

function CopyButton({ text, testId }: { text: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button type="button" data-testid={testId} onClick={() => navigator.clipboard?.writeText(text).then(() => setCopied(true), () => setCopied(false))}>
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

function ConnectionDetails({ tenant, canRotate, onRotated }: { tenant: TenantInfo; canRotate: boolean; onRotated: () => void }) {
  const api = useApi();
  const [confirming, setConfirming] = useState(false);
  const [secret, setSecret] = useState<{ direct: string | null; pooled: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const rotate = async () => {
    setConfirming(false);
    setError(null);
    try {
      const { rotateTenantCredentials: r } = await api.request(ROTATE, { input: { slug: tenant.slug } });
      if (r.userErrors.length) setError(r.userErrors.map((e: { code: string; message: string }) => `${e.code}: ${e.message}`).join('; '));
      else {
        setSecret({ direct: r.connectionString, pooled: r.pooledConnectionString });
        onRotated();
      }
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const [ends, setEnds] = useState<{ direct: Endpoint; pooled: Endpoint | null } | null>(null);
  // Asked apart from the page: without it the card still names the database and role.
  useEffect(() => {
    api.request(TENANT_ENDPOINTS, { slug: tenant.slug }).then((d) => setEnds(d.tenant?.endpoints ?? null), () => setEnds(null));
  }, [tenant.slug]);
  return (
    <section class="panel" data-testid="connection-details">
      <h3>Connection details</h3>
      {ends ? (
        <dl>
          <dt>Direct</dt>
          <dd><code data-testid="endpoint-direct">{url(ends.direct, MASK)}</code></dd>
          {ends.pooled && (
            <>
              <dt>Pooled</dt>
              <dd><code data-testid="endpoint-pooled">{url(ends.pooled, MASK)}</code></dd>
            </>
          )}
        </dl>
      ) : (
        <p>
          Database <code>{tenant.databaseName}</code>, role <code>{tenant.roleName}</code>, password {MASK}
        </p>
      )}
      {secret && (
        <div class="secret" data-testid="new-credentials">
          <p><b>New credentials — shown once.</b> Copy them now; the old password no longer works.</p>
          {secret.direct && <p><code data-testid="new-connection-string">{secret.direct}</code> <CopyButton text={secret.direct} testId="copy-connection-string" /></p>}
          {secret.pooled && <p><code data-testid="new-pooled-connection-string">{secret.pooled}</code> <CopyButton text={secret.pooled} testId="copy-pooled-connection-string" /></p>}
          <button type="button" onClick={() => setSecret(null)} data-testid="hide-credentials">Done</button>
        </div>
      )}
      {error && <p class="error" role="alert" data-testid="rotate-error">{error}</p>}
      {canRotate && !confirming && !secret && <button type="button" onClick={() => setConfirming(true)} data-testid="rotate">Rotate credentials</button>}
      {confirming && (
        <div class="confirm" data-testid="rotate-confirm">
          <p>A new password now: applications using the old one cannot log in again (open sessions continue).</p>
          <button type="button" onClick={() => setConfirming(false)} data-testid="rotate-cancel">Cancel</button>
          <button type="button" class="danger" onClick={rotate} data-testid="rotate-confirm-button">Rotate</button>
        </div>
      )}
    </section>
  );
}

function UsageCharts({ slug }: { slug: string }) {
  const api = useApi();
  const [range, setRange] = useState<'DAY' | 'WEEK'>('DAY');
  return (
    <section class="panel" data-testid="usage-chart">
      <header>
        <h3>Usage</h3>
        <div class="tabs">
          <button type="button" class={range === 'DAY' ? 'active' : ''} onClick={() => setRange('DAY')} data-testid="range-day">24 hours</button>
          <button type="button" class={range === 'WEEK' ? 'active' : ''} onClick={() => setRange('WEEK')} data-testid="range-week">7 days</button>
        </div>
      </header>
      <MinuteChart
        load={() => api.request<{ tenant: { usageHistory: UsagePoint[] } | null }>(TENANT_USAGE_HISTORY, { slug, range }).then((d) => d.tenant?.usageHistory ?? [])}
        deps={[slug, range]}
        seconds={range === 'DAY' ? 86_400 : 7 * 86_400}
        series={(all) => [
          { label: 'Sessions (per-minute peak)', values: all.map((p) => p.peakConnections), color: '#2563eb', step: true },
          { label: 'Quota', values: all.map((p) => p.maxConnections), color: '#dc2626', dashed: true, step: true },
        ]}
      />
    </section>
  );
}

interface Session { pid: number; state: string; durationSeconds: number; query: string | null; applicationName: string | null }

function Sessions({ slug, canTerminate, usage }: { slug: string; canTerminate: boolean; usage: Usage | null }) {
  const api = useApi();
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => api.request(TENANT_SESSIONS, { slug }).then((d) => setSessions(d.tenant?.connections ?? []), (err: Error) => setError(err.message));
  // Re-read when the live count changes (the sessions list is read live, not streamed).
  useEffect(() => void load(), [slug, usage?.current]);
  const terminate = async (pid: number) => {
    const { terminateConnection: r } = await api.request(TERMINATE, { input: { slug, pid } });
    setError(r.userErrors.length ? r.userErrors.map((e: { code: string; message: string }) => `${e.code}: ${e.message}`).join('; ') : null);
    void load();
  };
  return (
    <section class="panel" data-testid="sessions">
      <h3>Sessions</h3>
      {error && <p class="error">{error}</p>}
      <table>
        <thead>
          <tr><th>pid</th><th>State</th><th>Duration</th><th>Query</th><th>Application</th>{canTerminate && <th />}</tr>
        </thead>
        <tbody>
          {sessions?.map((s) => (
            <tr data-testid={`session-${s.pid}`}>
              <td>{s.pid}</td>
              <td>{s.state.toLowerCase().replace(/_/g, ' ')}</td>
              <td>{duration(s.durationSeconds)}</td>
              <td><code>{s.query ?? ''}</code></td>
              <td>{s.applicationName ?? ''}</td>
              {canTerminate && <td><button type="button" class="danger" onClick={() => terminate(s.pid)} data-testid={`terminate-${s.pid}`}>Terminate</button></td>}
            </tr>
          ))}
        </tbody>
      </table>
      {sessions?.length === 0 && <p class="muted">No sessions.</p>}
    </section>
  );
}

function SchemaCard({ tenant }: { tenant: TenantInfo }) {
  const v = tenant.schemaVersion;
  return (
    <section class="panel" data-testid="schema-card">
      <h3>Schema and extensions</h3>
      <p>
        Schema version <b data-testid="schema-version">{v?.version ?? '—'}</b>
        {v?.expectedVersion && v.expectedVersion !== v.version ? ` (expected ${v.expectedVersion})` : ''} · {v?.compatibility ?? ''}
      </p>
      <table>
        <thead><tr><th>Extension</th><th>Installed</th><th>Required</th><th>Available</th><th>Status</th></tr></thead>
        <tbody>
          {tenant.extensions.map((e) => (
            <tr data-testid={`extension-${e.name}`}>
              <td>{e.name}</td><td>{e.installedVersion ?? '—'}</td><td>{e.requiredVersion ?? 'any'}</td><td>{e.availableVersion ?? '—'}</td>
              <td><span class={`status status-${e.status.toLowerCase()}`}>{e.status}</span></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface AuditEvent { id: string; occurredAt: string; actor: string; action: string; category: string; subject: string | null }

function AuditTrail({ slug, usage }: { slug: string; usage: Usage | null }) {
  const api = useApi();
  const [first, setFirst] = useState(20);
  const [events, setEvents] = useState<{ total: number; list: AuditEvent[] } | null>(null);
  // A quota change arrives with the next usage sample (its max changes): the trail is re-read then.
  useEffect(() => {
    api.request(TENANT_AUDIT, { slug, first }).then((d) => d.tenant && setEvents({ total: d.tenant.auditEvents.totalCount, list: d.tenant.auditEvents.edges.map((e: { node: AuditEvent }) => e.node) }));
  }, [slug, first, usage?.max]);
  return (
    <section class="panel" data-testid="audit-trail">
      <h3>Audit trail {events && <small>({events.total})</small>}</h3>
      <ol class="timeline">
        {events?.list.map((e) => (
          <li data-testid="audit-event" data-action={e.action}>
            <time>{when(e.occurredAt)}</time> <b>{e.action}</b> by <span title={e.actor}>{who(e.actor)}</span>
          </li>
        ))}
      </ol>
      {events && events.list.length < events.total && <button type="button" onClick={() => setFirst(first + 20)} data-testid="audit-more">More</button>}
    </section>
  );
}
