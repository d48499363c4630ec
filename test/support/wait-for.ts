// Polls a condition in end-to-end tests (a sidecar's next refresh, an entry's expiry); fails with
// what was awaited when it does not hold in time. A deadline for the wait, not a speed assertion.
import assert from 'node:assert/strict';

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}
