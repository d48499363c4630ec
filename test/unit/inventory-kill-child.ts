// Child process for inventory-store.test.ts: observes requests without end and flushes on the
// store's own timer, reporting on stdout how many observations each completed flush covered. The
// test kills it with SIGKILL.
import { Inventory } from '../../extproc/src/inventory/inventory.ts';
import { InventoryStore } from '../../extproc/src/inventory/store.ts';

const [file, interval] = process.argv.slice(2);
const inventory = new Inventory();
const { store } = InventoryStore.open(file!, inventory, { flushIntervalMs: Number(interval) });
let observed = 0;
let flushes = store.flushes;
const headers = new Map<string, string[]>();
const batch = (): void => {
  if (store.flushes !== flushes) {
    flushes = store.flushes;
    process.stdout.write(`flushed ${observed}\n`);
  }
  for (let i = 0; i < 20; i++) {
    observed++;
    inventory.observeRequest({
      requestId: `k${observed}`, time: Date.now(), method: 'GET', path: `/books/v1/title-${observed % 37}`, authority: 'books.shop.svc',
      headers, caller: { workload: 'spiffe://cluster.local/ns/web/sa/frontend', mtls: true, identitySource: 'filter' },
    });
  }
  process.stdout.write(`observed ${observed}\n`);
  setTimeout(batch, 2);
};
batch();
