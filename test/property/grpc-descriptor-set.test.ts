// Any bytes as a policy's spec.content.grpc.descriptorSet: either a method list of "/pkg.Service/Method"
// paths or an Error saying what is wrong, never a crash or another exception type; any text that is
// not base64 is refused as such.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { methodsFromBase64DescriptorSet } from '../../extproc/src/inspect/grpc.ts';
import { descriptorSetBase64 } from '../support/descriptor-set.ts';
import { fuzzRuns } from './fuzz-runs.ts';

const KNOWN_PROBLEM = /^(not base64|not a serialized FileDescriptorSet|the descriptor set declares no service methods)/;

function outcome(base64: string): string[] | Error {
  try { return [...methodsFromBase64DescriptorSet(base64)]; } catch (err) { return err as Error; }
}

test('random bytes, and valid sets with bytes flipped, give methods or a named problem', () => {
  const valid = Buffer.from(descriptorSetBase64('syntax = "proto3"; package p; message M { int32 a = 1; } service S { rpc Get (M) returns (M); }'), 'base64');
  const mutated = fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, b]) => { const copy = Buffer.from(valid); copy[i] = b; return copy; });
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)), mutated), (bytes) => {
    const r = outcome(bytes.toString('base64'));
    if (r instanceof Error) assert.match(r.message, KNOWN_PROBLEM);
    else for (const m of r) assert.match(m, /^\/[^/]+\/[^/]+$/);
  }), { numRuns: fuzzRuns(300) });
});

test('text outside the base64 alphabet is refused as not base64', () => {
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 64 }).filter((s) => /[^A-Za-z0-9+/=\s]/.test(s)), (text) => {
    const r = outcome(text);
    assert.ok(r instanceof Error);
    assert.match(r.message, /^not base64/);
  }), { numRuns: fuzzRuns(200) });
});
