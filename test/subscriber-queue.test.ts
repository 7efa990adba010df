// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLoopStalls } from '../src/platform/event-loop-stalls.js';
import { STALL_BACKLOG_FACTOR, SubscriberQueue, SubscriptionEndedError } from '../src/platform/streams/subscriber-queue.js';

// Issue 14, item 11: what piles up while the server stalls is not held against the reader.

test('while the server recovers from a stall a full queue grows (to a bound, then drops its oldest); once it runs normally the reader is judged again', async () => {
  let stalled = true;
  let overflows = 0;
  const queue = new SubscriberQueue<number>({ capacity: 2, overflow: 'fail', forgive: () => stalled, onOverflow: () => overflows++ });
  const backlog = 2 * STALL_BACKLOG_FACTOR + 5;
  for (let i = 0; i < backlog; i++) assert.equal(queue.push(i), true);
  assert.equal(overflows, 0);
  assert.equal(queue.size, 2 * STALL_BACKLOG_FACTOR);
  assert.equal((await queue.next()).value, 5, 'the oldest beyond the bound went first');

  stalled = false;
  // Still over capacity once the server runs normally: this reader is too slow now.
  assert.equal(queue.push(99), false);
  assert.equal(overflows, 1);
  await assert.rejects(queue.next(), (err: unknown) => err instanceof SubscriptionEndedError && err.code === 'SUBSCRIBER_TOO_SLOW');
});

test('a blocked event loop is seen as a stall, from the first callback after it and for forgiveMs after', async () => {
  const stalls = new EventLoopStalls({ tickMs: 10, stallMs: 200, forgiveMs: 2000 });
  const settled = async () => {
    const deadline = Date.now() + 20_000;
    while (stalls.recovering() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return !stalls.recovering();
  };
  try {
    assert.equal(await settled(), true, 'running normally');
    const until = Date.now() + 400;
    while (Date.now() < until); // blocks the loop, as long work or SIGSTOP would
    assert.equal(stalls.recovering(), true, 'before the clock has ticked again');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stalls.recovering(), true, 'working off the backlog');
    assert.equal(await settled(), true, 'normal again once the backlog had its time');
  } finally {
    stalls.stop();
  }
});
