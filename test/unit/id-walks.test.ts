// Guessable ID walks (API1): counters read from IDs in three radices with their prefix, suffix and
// width as the shape, and letters-only names visited in sorted order; through the engine, a walk is
// flagged at the documented count (sequentialRun, default 5; names: sequentialRun + 2) and IDs the
// API showed the caller never count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CounterWalks, SortedNameWalks, counterReadings } from '../../extproc/src/engine/id-walks.ts';
import { Harness, T0, WEB, ofDetector } from './detectors/harness.ts';

test('counter readings: the last digit run with prefix, suffix and padding as the shape; hex and base-36 tails', () => {
  const decimal = (id: string) => counterReadings(id).find((r) => r.radix === 10);
  assert.deepEqual([decimal('ORD-000123')?.value, decimal('ORD-000123')?.pattern], [123, 'ORD-{n:6}']);
  assert.deepEqual([decimal('inv_2024_0042')?.value, decimal('inv_2024_0042')?.pattern], [42, 'inv_2024_{n:4}']);
  assert.deepEqual([decimal('A-17-eu')?.value, decimal('A-17-eu')?.pattern], [17, 'A-{n}-eu']);
  assert.equal(decimal('ORD-000123')?.shape, decimal('ORD-000124')?.shape);
  assert.notEqual(decimal('ORD-000123')?.shape, decimal('INV-000124')?.shape);
  assert.notEqual(decimal('ORD-000123')?.shape, decimal('ORD-000123-x')?.shape);
  assert.equal(counterReadings('00ff').find((r) => r.radix === 16)?.value, 255);
  assert.equal(counterReadings('00FF').find((r) => r.radix === 16)?.shape, counterReadings('00fe').find((r) => r.radix === 16)?.shape);
  assert.equal(counterReadings('k0zz').find((r) => r.radix === 36)?.value, parseInt('k0zz', 36));
  // Hashed and long IDs have no counter; a 10 KB ID costs nothing.
  assert.deepEqual(counterReadings(`sha256:${'ab12'.repeat(6)}${'9'.repeat(60)}`), []);
  assert.deepEqual(counterReadings('x'.repeat(10_000)), []);
  assert.deepEqual(counterReadings('9'.repeat(40)).filter((r) => r.radix === 10), [], 'beyond 15 digits no exact double');
});

test('CounterWalks: consecutive values of one shape in any order; other shapes and gaps break the run', () => {
  const runOf = (ids: string[]) => { const w = new CounterWalks(48); return Math.max(...ids.map((id) => w.observe(id)?.run ?? 0)); };
  assert.equal(runOf(['ORD-000123', 'ORD-000121', 'ORD-000124', 'ORD-000122', 'ORD-000125']), 5);
  assert.equal(runOf(['ORD-000123', 'INV-000124', 'ORD-000125', 'INV-000126']), 1);
  assert.equal(runOf(['ORD-000120', 'ORD-000122', 'ORD-000124', 'ORD-000126', 'ORD-000128']), 1);
  assert.equal(runOf(['00fd', '00fe', '00ff', '0100', '0101']), 5, 'hex carry');
  assert.equal(runOf(['x0ky', 'x0kz', 'x0l0', 'x0l1']), 4, 'base-36 carry');
  assert.equal(runOf(['ORD-99', 'ORD-100', 'ORD-101']), 3, 'unpadded decimal grows in width');
});

test('SortedNameWalks: strictly ascending names per collection, case-insensitive; anything else restarts', () => {
  const w = new SortedNameWalks(2);
  assert.deepEqual(['aaron', 'Abby', 'adam', 'adam', 'alex'].map((n) => w.observe('users', n)), [1, 2, 3, 1, 2]);
  assert.equal(w.observe('users', 'alice.lee86'), 0, 'not a letters-only name');
  assert.equal(w.observe('teams', 'blue'), 1, 'per collection');
  assert.equal(w.observe('users', 'bob'), 3);
  w.observe('groups', 'a'); w.observe('groups', 'ab');
  assert.equal(w.observe('teams', 'green'), 1, 'bounded: the least recent collection was forgotten');
});

const client = (n: number) => ({ workload: WEB, client: `10.30.0.${n}` });

function firstFlag(h: Harness, paths: string[], start: number, who: ReturnType<typeof client>): number {
  return paths.findIndex((path, i) => ofDetector(h.send({ time: start + i * 200, path, ...who, status: 404 }).requestFindings, 'bola').length > 0);
}

test('engine: prefixed, hex and base-36 walks are flagged at the fifth ID, with the pattern in the evidence', () => {
  const h = new Harness();
  const walks: [string[], string][] = [
    [[42, 41, 40, 39, 38, 37].map((n) => `/invoices/inv_2024_${String(n).padStart(4, '0')}`), 'inv_2024_{n:4}'],
    [[120, 121, 122, 123, 124, 125].map((n) => `/orders/ORD-${String(n).padStart(6, '0')}`), 'ORD-{n:6}'],
    [[0xfd, 0xfe, 0xff, 0x100, 0x101, 0x102].map((n) => `/blobs/b-${n.toString(16).padStart(4, '0')}`), 'b-{hex:4}'],
  ];
  walks.forEach(([paths, pattern], i) => {
    assert.equal(firstFlag(h, paths, T0 + i * 10_000, client(i + 1)), 4, pattern);
    const f = h.all.filter((x) => x.detector === 'bola' && x.evidence.kind === 'counter').at(-1);
    assert.equal(f?.evidence.run, 5);
    assert.match(String(f?.evidence.pattern), /\{(n|hex|b36)/);
  });
  const b36 = ['q7zx', 'q7zy', 'q7zz', 'q800', 'q801', 'q802'].map((id) => `/codes/${id}`);
  assert.equal(firstFlag(h, b36, T0 + 50_000, client(9)), 4);
});

test('engine: a wordlist walk (names in sorted order) is flagged at the seventh name; the same names in a listing\'s order of use are not', () => {
  const h = new Harness();
  let t = T0;
  // Users reading their own profiles make /users/{} a parameter position (IDs with digits).
  for (const u of ['grace.ali8', 'judy.t2', 'olivia.n21']) h.send({ time: (t += 100), path: `/users/${u}`, ...client(20), responseBody: { username: u } });
  const names = ['aaron', 'abby', 'adam', 'agnes', 'alex', 'alice', 'amber', 'andrew', 'angela'];
  assert.equal(firstFlag(h, names.map((n) => `/users/${n}`), (t += 1000), client(21)), 6);
  const f = h.all.filter((x) => x.evidence.kind === 'sorted-names').at(-1);
  assert.equal(f?.evidence.run, 7);
  // The same names in random order, and sorted but shown first by a listing: no walk.
  const shuffled = ['alex', 'aaron', 'angela', 'abby', 'andrew', 'agnes', 'amber', 'adam', 'alice'];
  assert.equal(firstFlag(h, shuffled.map((n) => `/users/${n}`), (t += 10_000), client(22)), -1);
  h.send({ time: (t += 10_000), path: '/users', ...client(23), responseBody: { users: names.map((username) => ({ id: username })) } });
  assert.equal(firstFlag(h, names.map((n) => `/users/${n}`), (t += 1000), client(23)), -1);
});

test('engine: prefixed IDs the API showed or the caller created are never a walk, in any order', () => {
  const h = new Harness();
  let t = T0;
  const ids = Array.from({ length: 12 }, (_, i) => `ORD-${String(500 + i).padStart(6, '0')}`);
  h.send({ time: (t += 100), path: '/orders', ...client(40), responseBody: { items: ids.map((id) => ({ id })) } });
  assert.equal(firstFlag(h, ids.map((id) => `/orders/${id}`), (t += 100), client(40)), -1);
  for (const id of ['ORD-000900', 'ORD-000901', 'ORD-000902', 'ORD-000903', 'ORD-000904', 'ORD-000905']) {
    h.send({ time: (t += 100), method: 'POST', path: '/orders', ...client(41), body: { qty: 1 }, status: 201, responseBody: { order_id: id } });
  }
  assert.equal(firstFlag(h, ['/orders/ORD-000903', '/orders/ORD-000900', '/orders/ORD-000904', '/orders/ORD-000901', '/orders/ORD-000905', '/orders/ORD-000902'], (t += 100), client(41)), -1);
});
