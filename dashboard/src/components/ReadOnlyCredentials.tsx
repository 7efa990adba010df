import { useEffect, useState } from 'preact/hooks';
import { useApi } from '../api-context.ts';
import { CREATE_READ_ONLY, READ_ONLY_CREDENTIALS, REVOKE_READ_ONLY } from '../queries.ts';
import type { UserError } from '../graphql.ts';
import { when, who } from '../format.ts';

interface Credentials { id: string; name: string | null; roleName: string; maxConnections: number; createdAt: string; createdBy: string; expiresAt: string; revokedAt: string | null; status: string }

const DAY_MS = 86_400_000;

/** Read-only logins for BI tools: listed, created (the connection string shown once) and revoked. */
export function ReadOnlyCredentialsPanel({ slug, canManage }: { slug: string; canManage: boolean }) {
  const api = useApi();
  const [list, setList] = useState<Credentials[] | null>(null);
  const [name, setName] = useState('');
  const [days, setDays] = useState('30');
  const [secret, setSecret] = useState<string | null>(null);
  const [errors, setErrors] = useState<UserError[]>([]);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api.request(READ_ONLY_CREDENTIALS, { slug }).then((d) => setList(d.tenant?.readOnlyCredentials ?? []), () => setList([]));
  }, [slug, version]);
  const create = async (e: Event) => {
    e.preventDefault();
    const expiresAt = new Date(Date.now() + Number(days) * DAY_MS).toISOString();
    const { createReadOnlyCredentials: r } = await api.request(CREATE_READ_ONLY, { input: { slug, expiresAt, name: name.trim() || null } });
    setErrors(r.userErrors);
    if (r.connectionString) setSecret(r.connectionString);
    setVersion((v) => v + 1);
  };
  const revoke = async (id: string) => {
    const { revokeReadOnlyCredentials: r } = await api.request(REVOKE_READ_ONLY, { id });
    setErrors(r.userErrors);
    setVersion((v) => v + 1);
  };
  return (
    <section class="panel" data-testid="read-only-credentials">
      <h3>Read-only credentials</h3>
      <table>
        <thead><tr><th>Name</th><th>Role</th><th>Connections</th><th>Expires</th><th>Status</th>{canManage && <th />}</tr></thead>
        <tbody>
          {list?.map((c) => (
            <tr data-testid={`read-only-${c.id}`}>
              <td>{c.name ?? '—'}</td><td><code>{c.roleName}</code></td><td>{c.maxConnections}</td><td>{when(c.expiresAt)}</td>
              <td title={`created ${when(c.createdAt)} by ${who(c.createdBy)}`}>{c.status}</td>
              {canManage && <td>{c.status === 'ACTIVE' && <button type="button" class="danger" onClick={() => revoke(c.id)}>Revoke</button>}</td>}
            </tr>
          ))}
        </tbody>
      </table>
      {secret && (
        <div class="secret" data-testid="read-only-secret">
          <p><b>Shown once:</b> <code>{secret}</code></p>
          <button type="button" onClick={() => navigator.clipboard?.writeText(secret)}>Copy</button> <button type="button" onClick={() => setSecret(null)}>Done</button>
        </div>
      )}
      {errors.map((err) => <p class="error" role="alert"><code>{err.code}</code> {err.message}</p>)}
      {canManage && (
        <form class="inline-form" onSubmit={create}>
          <input type="text" placeholder="name (e.g. the BI tool)" value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="read-only-name" />
          <label>
            expires in <input type="number" min={1} max={366} value={days} onInput={(e) => setDays(e.currentTarget.value)} /> days
          </label>
          <button type="submit" data-testid="read-only-create">Create</button>
        </form>
      )}
    </section>
  );
}
