import type pg from 'pg';

/**
 * Runs `fn` with a client checked out of `pool`. A checked-out client has no listener for
 * connection errors (the pool only watches idle ones), so a server restart would surface as
 * an unhandled `error` event and kill the process: this attaches one for as long as the
 * client is out, and hands a broken client back to be destroyed rather than reused.
 */
export async function withCheckedOutClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient, state: { broken: Error | null }) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const state: { broken: Error | null } = { broken: null };
  const onError = (err: Error) => {
    state.broken ??= err;
  };
  client.on('error', onError);
  try {
    return await fn(client, state);
  } finally {
    client.removeListener('error', onError);
    client.release(state.broken ?? undefined);
  }
}
