// Feeds a recorded capture (corpus format, extproc/src/replay/record.ts) into an inventory as if the
// engine had observed it live: request, then response.
import { captureEpoch, readCapture, toRequestEvent, toResponseEvent, type CaptureRecord } from '../replay/record.ts';
import type { Inventory } from './inventory.ts';

export function replayIntoInventory(inventory: Inventory, records: readonly CaptureRecord[]): number {
  const epoch = captureEpoch(records);
  for (const r of records) {
    const request = toRequestEvent(r, epoch);
    inventory.observeRequest(request);
    const response = toResponseEvent(r, request);
    if (response) inventory.observeResponse(request, response);
  }
  return records.length;
}

export async function replayFileIntoInventory(inventory: Inventory, file: string): Promise<number> {
  return replayIntoInventory(inventory, await readCapture(file));
}
