import { useEffect, useMemo, useState } from 'preact/hooks';
import { useApi } from '../api-context.ts';
import { CLUSTER_USAGE, CLUSTERS, FLEET_HISTORY, FLEET_SPARKLINES, FLEET_TENANTS, OPERATION_PROGRESS, RUNNING_OPERATIONS, USAGE_BATCH } from '../queries.ts';
import type { Operation, TenantRow, Usage, UsagePoint } from '../types.ts';
import { ago, maybe, trendOf, when, who } from '../format.ts';
import { Gauge } from '../components/Gauge.tsx';
import { Link, tenantPath } from '../nav.ts';
import { Sparkline } from '../components/Sparkline.tsx';
import { MinuteChart } from '../components/TimeChart.tsx';
import { QuotaDialog, type QuotaSaved } from '../components/QuotaDialog.tsx';
import { QuotaHistory } from '../components/QuotaHistory.tsx';

const PAGE_SIZE = 50;
/** Live samples kept per row for the sparkline and trend (after the hour of history). */
const KEPT_SAMPLES = 120;

export function FleetPage() {
  return (
    <div class="fleet" data-testid="fleet-page">
      <Clusters />
      <TenantTable />
      <div class="columns">
        <FleetChart />
        <RunningOperations />
      </div>
    </div>
  );
}

interface Cluster { id: string; name: string; capacity: number | null; allocatedConnections: number | null; tenantCount: number | null; maxConnections: number | null; serverVersion: string | null }
interface ClusterLive { current: number; maxConnections: number; tenantConnections: number; allocatedConnections: number; tenantCount: number; tenantsAtLimit: number; usagePercent: number }

function Clusters() {
  const api = useApi();
  const [clusters, setClusters] = useState<Cluster[]>([]);
  const [live, setLive] = useState<Record<string, ClusterLive>>({});
  useEffect(() => {
    let stops: (() => void)[] = [];
    api.request<{ clusters: Cluster[] }>(CLUSTERS).then(({ clusters }) => {
      setClusters(clusters);
      stops = clusters.map((c) => api.subscribe<{ clusterUsage: ClusterLive }>(CLUSTER_USAGE, { clusterId: c.id }, (d) => setLive((l) => ({ ...l, [c.id]: d.clusterUsage }))));
    });
    return () => stops.forEach((stop) => stop());
  }, []);
  return (
    <section class="clusters" data-testid="clusters">
      {clusters.map((c) => {
        const l = live[c.id];
        const allocated = l?.allocatedConnections ?? c.allocatedConnections ?? 0;
        const capacity = c.capacity ?? 0;
        return (
          <div class="cluster" data-testid={`cluster-${c.name}`}>
            <h3>
              {c.name} <small>PostgreSQL {c.serverVersion ?? '?'}</small>
            </h3>
            <div class="bar-label">
              Quota allocated {allocated} of {capacity} ({l?.tenantCount ?? c.tenantCount ?? 0} tenants)
            </div>
            <Gauge percent={capacity ? (allocated / capacity) * 100 : 0} testId={`cluster-allocation-${c.name}`} />
            <div class="bar-label">
              Sessions {l ? `${l.current} of ${l.maxConnections} (tenants ${l.tenantConnections})` : '…'}
            </div>
            <Gauge percent={l?.usagePercent ?? 0} testId={`cluster-sessions-${c.name}`} />
            <div class={l?.tenantsAtLimit ? 'at-limit alert' : 'at-limit'} data-testid={`cluster-at-limit-${c.name}`}>
              {l ? `${l.tenantsAtLimit} at their limit` : ''}
            </div>
          </div>
        );
      })}
    </section>
  );
}

interface Page { totalCount: number; rows: TenantRow[]; endCursor: string | null; hasNextPage: boolean }

function TenantTable() {
  const api = useApi();
  const [search, setSearch] = useState('');
  const [band, setBand] = useState('');
  const [order, setOrder] = useState<'USAGE_PERCENT' | 'SLUG'>('USAGE_PERCENT');
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<Page | null>(null);
  const [series, setSeries] = useState<Record<string, number[]>>({});
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [history, setHistory] = useState<string | null>(null);
  const [saves, setSaves] = useState(0);
  const after = cursors[cursors.length - 1] ?? null;
  // Only the filters in use are sent.
  const filter = useMemo(() => ({ ...(search.trim() && { search: search.trim() }), ...(band && { usagePercentAbove: Number(band) }) }), [search, band]);

  // The page, then its last hour (sparklines) once the rows show.
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      // By usage, closest to their limit first; that order lists sampled (ACTIVE) tenants only.
      const vars = { first: PAGE_SIZE, after, filter, orderBy: { field: order, direction: order === 'SLUG' ? 'ASC' : 'DESC' } };
      api.request(FLEET_TENANTS, vars).then(
        (d) => {
          if (!live) return;
          setError(null);
          setPage({ totalCount: d.tenants.totalCount, rows: d.tenants.edges.map((e: { node: TenantRow }) => e.node), endCursor: d.tenants.pageInfo.endCursor, hasNextPage: d.tenants.pageInfo.hasNextPage });
          api.request(FLEET_SPARKLINES, vars).then((h) => {
            if (!live) return;
            const next: Record<string, number[]> = {};
            for (const { node } of h.tenants.edges as { node: { slug: string; usageHistory: UsagePoint[] } }[]) next[node.slug] = node.usageHistory.map((p) => p.peakConnections);
            setSeries((s) => ({ ...s, ...next }));
          });
        },
        (err: Error) => live && setError(err.message),
      );
    }, search ? 250 : 0);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [after, filter, order]);

  // Live rows: the batch subscription for exactly this page's tenants (it opens with a snapshot).
  const slugs = page?.rows.map((r) => r.slug).join(',') ?? '';
  useEffect(() => {
    if (!slugs) return;
    return api.subscribe<{ connectionUsageBatch: { usage: Usage[]; removedTenantSlugs: string[] } }>(USAGE_BATCH, { slugs: slugs.split(',') }, ({ connectionUsageBatch: batch }) => {
      const bySlug = new Map(batch.usage.map((u) => [u.tenantSlug, u]));
      setPage((p) => p && { ...p, rows: p.rows.map((r) => (bySlug.has(r.slug) ? { ...r, usage: bySlug.get(r.slug)! } : batch.removedTenantSlugs.includes(r.slug) ? { ...r, usage: null } : r)) });
      setSeries((s) => {
        const next = { ...s };
        for (const u of batch.usage) next[u.tenantSlug] = [...(s[u.tenantSlug] ?? []), u.current].slice(-KEPT_SAMPLES);
        return next;
      });
    });
  }, [slugs]);

  const saved = ({ slug, quota, usage }: QuotaSaved) => {
    setPage((p) => p && { ...p, rows: p.rows.map((r) => (r.slug === slug ? { ...r, quota, usage: usage ?? r.usage } : r)) });
    setSaves((n) => n + 1);
  };
  const restart = () => setCursors([null]);

  return (
    <section class="tenants">
      <div class="toolbar">
        <h2>
          Tenants <span data-testid="tenant-total">{page ? page.totalCount : '…'}</span>
        </h2>
        <input type="search" placeholder="Search slug or name" value={search} onInput={(e) => { setSearch(e.currentTarget.value); restart(); }} data-testid="tenant-search" />
        <select value={band} onChange={(e) => { setBand(e.currentTarget.value); restart(); }} data-testid="usage-filter">
          <option value="">Any usage</option>
          <option value="50">Over 50 %</option>
          <option value="80">Over 80 %</option>
          <option value="90">Over 90 %</option>
        </select>
        <select value={order} onChange={(e) => { setOrder(e.currentTarget.value as typeof order); restart(); }} data-testid="tenant-order">
          <option value="USAGE_PERCENT">Highest usage first</option>
          <option value="SLUG">By slug</option>
        </select>
      </div>
      {error && <p class="error" data-testid="tenants-error">{error}</p>}
      <table data-testid="tenant-table">
        <thead>
          <tr>
            <th>Tenant</th><th>Usage</th><th>Current / max</th><th title="pooled / direct / pooler-idle">Pooled / direct / idle</th><th>Trend</th><th>24 h peak</th><th>Last hour</th><th>Quota changed</th><th />
          </tr>
        </thead>
        <tbody>
          {page?.rows.map((row) => {
            const u = row.usage;
            const max = u?.max ?? row.quota?.maxConnections ?? 0;
            const values = series[row.slug] ?? [];
            return (
              <tr key={row.slug} data-testid={`tenant-row-${row.slug}`}>
                <td><Link to={tenantPath(row.slug)} data-testid={`open-${row.slug}`}>{row.slug}</Link><div class="muted">{row.status !== 'ACTIVE' ? row.status : row.displayName}</div></td>
                <td>{u ? <Gauge percent={u.usagePercent} testId={`gauge-${row.slug}`} /> : '—'}</td>
                <td data-testid={`current-${row.slug}`}>{u ? `${u.current} / ${u.max}` : `– / ${max}`}</td>
                <td>{u ? `${maybe(u.pooled)} / ${maybe(u.direct)} / ${maybe(u.poolerIdle)}` : '—'}</td>
                <td class="trend" data-testid={`trend-${row.slug}`}>{trendOf(values, max)}</td>
                <td>{u?.peak24h ?? '—'}</td>
                <td><Sparkline values={values} max={max} /></td>
                <td data-testid={`quota-changed-${row.slug}`}>{row.quota ? <span title={when(row.quota.updatedAt)}>{ago(row.quota.updatedAt)} by {who(row.quota.updatedBy)}</span> : '—'}</td>
                <td class="actions">
                  <button type="button" onClick={() => setEditing(row.slug)} data-testid={`edit-quota-${row.slug}`}>Edit quota</button>
                  <button type="button" onClick={() => setHistory(row.slug)} data-testid={`history-${row.slug}`}>History</button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div class="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))} data-testid="page-previous">← Previous</button>
        <span>Page {cursors.length}{page ? ` of ${Math.max(1, Math.ceil(page.totalCount / PAGE_SIZE))}` : ''}</span>
        <button type="button" disabled={!page?.hasNextPage} onClick={() => page?.endCursor && setCursors([...cursors, page.endCursor])} data-testid="page-next">Next →</button>
      </div>
      {editing && <QuotaDialog slug={editing} onClose={() => setEditing(null)} onSaved={saved} />}
      {history && <QuotaHistory slug={history} version={saves} onClose={() => setHistory(null)} />}
    </section>
  );
}

interface FleetPoint { minuteStartAt: string; sessions: number; tenantSessions: number; allocatedConnections: number }

function FleetChart() {
  const api = useApi();
  return (
    <section class="panel" data-testid="fleet-chart">
      <h3>Fleet sessions, last 24 hours</h3>
      <MinuteChart
        load={() => api.request<{ fleetUsageHistory: FleetPoint[] }>(FLEET_HISTORY).then((d) => d.fleetUsageHistory)}
        deps={[]}
        seconds={86_400}
        series={(all) => [
          { label: 'Sessions', values: all.map((p) => p.sessions), color: '#2563eb', step: true },
          { label: 'Tenant sessions', values: all.map((p) => p.tenantSessions), color: '#16a34a', step: true },
          { label: 'Quota allocated', values: all.map((p) => p.allocatedConnections), color: '#9ca3af', dashed: true, step: true },
        ]}
      />
    </section>
  );
}

function RunningOperations() {
  const api = useApi();
  const [operations, setOperations] = useState<Operation[]>([]);
  useEffect(() => {
    let stops: (() => void)[] = [];
    api.request(RUNNING_OPERATIONS).then((d) => {
      const list: Operation[] = d.operations.edges.map((e: { node: Operation }) => e.node);
      setOperations(list);
      stops = list.map((op) => api.subscribe<{ operation: Operation }>(OPERATION_PROGRESS, { id: op.id }, ({ operation }) => setOperations((ops) => ops.map((o) => (o.id === operation.id ? operation : o)))));
    });
    return () => stops.forEach((stop) => stop());
  }, []);
  return (
    <section class="panel" data-testid="running-operations">
      <h3>Running operations</h3>
      {operations.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul class="operations">
          {operations.map((op) => (
            <li data-testid={`operation-${op.id}`}>
              <b>{op.kind}</b> {op.template}
              {op.targetVersion ? ` → ${op.targetVersion}` : ''} · {op.status} · {op.done}/{op.total} ({op.failed} failed)
              <progress max={op.total || 1} value={op.done} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
