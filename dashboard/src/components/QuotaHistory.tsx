import { useEffect, useState } from 'preact/hooks';
import { useApi } from '../api-context.ts';
import { QUOTA_DETAILS } from '../queries.ts';
import type { QuotaChange } from '../types.ts';
import { when, who } from '../format.ts';

const STEP = 10;

/** The quota's changes as a timeline, newest first; "more" asks for more. `version` bumps reload it. */
export function QuotaHistory({ slug, version, onClose }: { slug: string; version: number; onClose: () => void }) {
  const api = useApi();
  const [first, setFirst] = useState(STEP);
  const [changes, setChanges] = useState<QuotaChange[] | null>(null);
  useEffect(() => {
    api.request(QUOTA_DETAILS, { slug, first }).then((d) => setChanges(d.tenant?.quota?.history ?? []));
  }, [slug, first, version]);
  return (
    <aside class="panel history" data-testid="quota-history">
      <header>
        <h3>Quota history of {slug}</h3>
        <button type="button" onClick={onClose} data-testid="quota-history-close">×</button>
      </header>
      {changes === null ? (
        <p>Loading…</p>
      ) : (
        <ol class="timeline">
          {changes.map((c) => (
            <li data-testid="quota-change">
              <time>{when(c.changedAt)}</time> <b title={c.actor}>{who(c.actor)}</b>: {c.oldMaxConnections ?? '—'} → {c.newMaxConnections}
              {c.reason && <q>{c.reason}</q>}
            </li>
          ))}
        </ol>
      )}
      {changes && changes.length >= first && (
        <button type="button" onClick={() => setFirst(first + STEP)} data-testid="quota-history-more">More</button>
      )}
    </aside>
  );
}
