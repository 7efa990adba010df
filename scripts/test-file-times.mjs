// A node:test reporter for scripts/run-tests.ts (plain JavaScript: node loads reporters without
// tsx): how long each test file took, written as `<seconds> <file>` lines, slowest first, so that
// a run says where its time went. A file's time runs from its start (the runner takes it from
// the queue) to its end, hooks included; files run concurrently, so the times add up to more
// than the run.

/** @param {AsyncIterable<{ type: string; data?: { file?: string; name?: string } }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, { start: number; end?: number }>} */
  const seen = new Map();
  for await (const event of source) {
    const file = event.data?.file;
    // The events of a file itself (not of its tests) carry its path as their name.
    if (!file || event.data?.name !== file) continue;
    if (event.type === 'test:dequeue') seen.set(file, { start: performance.now() });
    else if (event.type === 'test:complete' && seen.has(file)) seen.get(file).end = performance.now();
  }
  const rows = [...seen]
    .map(([file, t]) => ({ file, seconds: ((t.end ?? performance.now()) - t.start) / 1000 }))
    .sort((a, b) => b.seconds - a.seconds);
  yield rows.map((r) => `${r.seconds.toFixed(0).padStart(5)} ${r.file}`).join('\n') + '\n';
}
