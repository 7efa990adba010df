import { useEffect, useState } from 'preact/hooks';
import { useApi } from '../api-context.ts';
import type { UserError } from '../graphql.ts';
import { QUOTA_DETAILS, UPDATE_QUOTA } from '../queries.ts';
import type { QuotaChange, QuotaSummary, Usage } from '../types.ts';
import { Gauge } from './Gauge.tsx';

interface Details {
  cluster: { capacity: number | null; allocatedConnections: number | null };
  usage: Pick<Usage, 'current' | 'max' | 'usagePercent' | 'peak24h'> | null;
  quota: QuotaSummary & { history: QuotaChange[] };
}

export interface QuotaSaved { slug: string; quota: QuotaSummary; usage: Usage | null }

/**
 * Edits one tenant's quota. The browser checks only what it knows (a whole number, within the
 * cluster's free capacity); QUOTA_MIN..QUOTA_MAX and the rest are the API's to say, and its
 * userErrors are shown as they come, with their code.
 */
export function QuotaDialog({ slug, onClose, onSaved }: { slug: string; onClose: () => void; onSaved: (saved: QuotaSaved) => void }) {
  const api = useApi();
  const [details, setDetails] = useState<Details | null>(null);
  const [value, setValue] = useState('');
  const [reason, setReason] = useState('');
  const [errors, setErrors] = useState<UserError[]>([]);
  const [warnings, setWarnings] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.request<{ tenant: Details | null }>(QUOTA_DETAILS, { slug, first: 1 }).then((d) => {
      if (!d.tenant) return;
      setDetails(d.tenant);
      // What the user typed while this loaded stays.
      setValue((typed) => typed || String(d.tenant!.quota.maxConnections));
    }, (err: Error) => setErrors([{ code: 'ERROR', field: null, message: err.message }]));
  }, [slug]);

  const current = details?.quota.maxConnections ?? 0;
  const capacity = details?.cluster.capacity ?? null;
  const free = capacity !== null && details?.cluster.allocatedConnections != null ? capacity - details.cluster.allocatedConnections + current : null;
  const n = Number(value);
  const local = !/^\d+$/.test(value.trim()) ? 'A whole number of connections.' : free !== null && n > free ? `The cluster has room for at most ${free} for this tenant (capacity ${capacity}).` : null;

  const save = async (e: Event) => {
    e.preventDefault();
    if (local) return;
    setBusy(true);
    setErrors([]);
    try {
      const data = await api.request(UPDATE_QUOTA, { input: { slug, maxConnections: n, reason: reason.trim() || null } });
      const result = data.updateTenantQuota;
      setErrors(result.userErrors);
      setWarnings(result.warnings);
      if (result.userErrors.length === 0 && result.quota) {
        onSaved({ slug, quota: result.quota, usage: result.tenant?.usage ?? null });
        onClose();
      }
    } catch (err) {
      setErrors([{ code: (err as { code?: string }).code ?? 'ERROR', field: null, message: (err as Error).message }]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="overlay" data-testid="quota-dialog" role="dialog" aria-modal="true" aria-label={`Quota of ${slug}`}>
      <form class="dialog" onSubmit={save}>
        <h2>Quota of {slug}</h2>
        {details?.usage && (
          <div class="dialog-usage" data-testid="quota-dialog-usage">
            Now {details.usage.current} / {details.usage.max} sessions (24-hour peak {details.usage.peak24h})
            <Gauge percent={details.usage.usagePercent} />
          </div>
        )}
        <label>
          New maximum connections
          <input type="number" min={0} value={value} onInput={(e) => setValue(e.currentTarget.value)} data-testid="quota-input" />
        </label>
        {value !== '' && local && <p class="error" data-testid="quota-local-error">{local}</p>}
        <label>
          Reason
          <input type="text" value={reason} onInput={(e) => setReason(e.currentTarget.value)} placeholder="why (kept in the history and audit)" data-testid="quota-reason" />
        </label>
        <p class="hint">The tenant's role, database and pooler limits will change.</p>
        {errors.map((err) => (
          <p class="error" role="alert" data-testid="quota-error" data-code={err.code}>
            <code>{err.code}</code> {err.message}
          </p>
        ))}
        {warnings.map((w) => <p class="warning">{w}</p>)}
        <div class="buttons">
          <button type="button" onClick={onClose} data-testid="quota-cancel">Cancel</button>
          <button type="submit" disabled={busy || !details} data-testid="quota-save">Save</button>
        </div>
      </form>
    </div>
  );
}
