// Issue #7: ApiSecurityPolicy validation against the CRD's own schema plus semantic checks.
// Each kind of bad input the issue names is rejected with a field path and a reason.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import fc from 'fast-check';
import { PROJECT_ROOT } from '../../extproc/src/local/envoy-binary.ts';
import { MAX_POLICY_BYTES, parsePolicies, validatePolicyObject, type PolicyError } from '../../extproc/src/policy/validate.ts';
import { fieldPath } from '../../extproc/src/policy/structural-schema.ts';
import { engineSettingsFor } from '../../extproc/src/policy/engine-mapping.ts';
import { filterPolicyFor } from '../../extproc/src/policy/filter-mapping.ts';
import { buildFilterTables } from '../../extproc/src/filter-config/build.ts';

const EXAMPLES = path.join(PROJECT_ROOT, 'istio', 'examples');

function policy(spec: unknown, name = 'p'): Record<string, unknown> {
  return { apiVersion: 'security.meshward.io/v1alpha1', kind: 'ApiSecurityPolicy', metadata: { name, namespace: 'shop' }, spec };
}

function errorsOf(spec: unknown): { path: string; reason: string }[] {
  return validatePolicyObject(policy(spec)).errors;
}

/** Every ```yaml block of a markdown file that holds an ApiSecurityPolicy. */
function markdownPolicies(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => /kind:\s*ApiSecurityPolicy/.test(b));
}

describe('policy examples', () => {
  test('every file under istio/examples is a valid policy', () => {
    const files = readdirSync(EXAMPLES).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length >= 3, 'examples exist');
    for (const f of files) {
      const r = parsePolicies(f, readFileSync(path.join(EXAMPLES, f), 'utf8'), { baseDir: EXAMPLES });
      assert.deepEqual(r.errors, [], `${f} is valid`);
      assert.ok(r.policies.length >= 1, `${f} holds a policy`);
    }
  });

  test('every policy shown in istio/README.md (and README.md, if it shows any) is valid', () => {
    const docs = [path.join(PROJECT_ROOT, 'istio', 'README.md'), path.join(PROJECT_ROOT, 'README.md')];
    let count = 0;
    for (const doc of docs) {
      let blocks: string[] = [];
      try { blocks = markdownPolicies(doc); } catch { continue; }
      blocks.forEach((b, i) => {
        const r = parsePolicies(`${path.basename(doc)} block ${i}`, b, { baseDir: EXAMPLES });
        assert.deepEqual(r.errors, [], `${doc} block ${i}`);
        count += r.policies.length;
      });
    }
    assert.ok(count >= 2, `the docs show policies (${count})`);
  });

  test('defaults are filled in: monitor mode, fail open', () => {
    const r = validatePolicyObject(policy({}));
    assert.equal(r.policy?.spec.mode, 'monitor');
    assert.equal(r.policy?.spec.failureMode, 'open');
  });
});

describe('bad input is rejected with field path and reason', () => {
  test('unknown fields, at any depth', () => {
    assert.deepEqual(errorsOf({ mode: 'enforce', modee: 'x' }), [{ path: 'spec.modee', reason: 'unknown field' }]);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', requests: 1, per: 'second', perr: 1 }] }), [{ path: 'spec.rateLimits[0].perr', reason: 'unknown field' }]);
    const top = validatePolicyObject({ ...policy({}), extra: true }).errors;
    assert.deepEqual(top, [{ path: 'extra', reason: 'unknown field' }]);
  });

  test('wrong types and values outside the schema', () => {
    assert.deepEqual(errorsOf({ mode: 'block' }), [{ path: 'spec.mode', reason: 'must be one of: monitor, enforce' }]);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', requests: '10', per: 'second' }] }), [{ path: 'spec.rateLimits[0].requests', reason: 'must be of type integer' }]);
    assert.deepEqual(errorsOf({ sampling: { bodyRate: 2 } }), [{ path: 'spec.sampling.bodyRate', reason: 'must be <= 1' }]);
    assert.deepEqual(errorsOf({ callGraph: { deny: [{ from: 'frontend' }] } }).map((e) => e.path), ['spec.callGraph.deny[0].from']);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', per: 'second' }] }), [{ path: 'spec.rateLimits[0].requests', reason: 'required field missing' }]);
    assert.deepEqual(validatePolicyObject({ ...policy({}), apiVersion: 'v1' }).errors, [{ path: 'apiVersion', reason: 'must be security.meshward.io/v1alpha1' }]);
    assert.deepEqual(validatePolicyObject({ ...policy({}), metadata: {} }).errors.map((e) => e.path), ['metadata.name']);
  });

  test('conflicting rules', () => {
    const deny = { from: 'spiffe://cluster.local/ns/a/sa/b', methods: ['GET'], paths: ['/users/*'] };
    assert.deepEqual(errorsOf({ callGraph: { allow: [{ from: deny.from, paths: ['/users/*'] }], deny: [deny] } }), [
      { path: 'spec.callGraph.deny[0]', reason: 'conflicts with spec.callGraph.allow[0] (same caller, overlapping methods and paths)' },
    ]);
    // Disjoint methods do not conflict.
    assert.deepEqual(errorsOf({ callGraph: { allow: [{ from: deny.from, methods: ['POST'] }], deny: [deny] } }), []);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', requests: 1, per: 'second' }, { name: 'a', requests: 2, per: 'minute', path: '/x' }] }), [
      { path: 'spec.rateLimits[1]', reason: 'duplicate rate limit name "a" (also at spec.rateLimits[0])' },
    ]);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', requests: 1, per: 'second', path: '/x' }, { name: 'b', requests: 2, per: 'minute', path: '/x' }] }), [
      { path: 'spec.rateLimits[1]', reason: 'duplicate match (caller, method, path) "* * /x" (also at spec.rateLimits[0])' },
    ]);
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'a', requests: 10, per: 'second', burst: 5 }] }), [{ path: 'spec.rateLimits[0].burst', reason: 'must be >= requests (10)' }]);
    assert.deepEqual(errorsOf({ detectors: [{ name: 'bola' }, { name: 'bola' }] }), [{ path: 'spec.detectors[1]', reason: 'duplicate detector "bola" (also at spec.detectors[0])' }]);
  });

  test('references to missing specs', () => {
    assert.deepEqual(errorsOf({ businessFlows: [{ name: 'checkout', apiSpec: 'orders', steps: [{ operation: 'POST /a' }, { operation: 'POST /b' }] }] }), [
      { path: 'spec.businessFlows[0].apiSpec', reason: 'refers to "orders", which is not in spec.apiSpecs' },
    ]);
    const r = validatePolicyObject(policy({ apiSpecs: [{ name: 'orders', file: 'specs/missing.yaml' }] }), { baseDir: EXAMPLES });
    assert.deepEqual(r.errors, [{ path: 'spec.apiSpecs[0].file', reason: `spec file not found: ${path.join(EXAMPLES, 'specs', 'missing.yaml')}` }]);
    assert.deepEqual(errorsOf({ apiSpecs: [{ name: 'orders' }] }), [{ path: 'spec.apiSpecs[0]', reason: 'exactly one of configMapRef, file, url is required (got none)' }]);
  });

  test('unknown detectors and thresholds are named with what is known', () => {
    const [unknown] = errorsOf({ detectors: [{ name: 'bolla' }] });
    assert.equal(unknown?.path, 'spec.detectors[0].name');
    assert.match(unknown!.reason, /^unknown detector "bolla" \(known: .*bola/);
    const [threshold] = errorsOf({ detectors: [{ name: 'bola', thresholds: { foreignThreshhold: 2 } }] });
    assert.equal(threshold?.path, 'spec.detectors[0].thresholds.foreignThreshhold');
    assert.match(threshold!.reason, /known: .*foreignThreshold/);
  });

  test('JWT issuers need exactly one key source, and inline JWKS must be a key set', () => {
    assert.deepEqual(errorsOf({ jwt: { issuers: [{ issuer: 'i' }] } }), [{ path: 'spec.jwt.issuers[0]', reason: 'exactly one of jwksUri, jwks is required' }]);
    assert.deepEqual(errorsOf({ jwt: { issuers: [{ issuer: 'i', jwks: '{"nokeys":1}' }] } }), [{ path: 'spec.jwt.issuers[0].jwks', reason: 'not a JWKS document: no "keys" array' }]);
  });

  test('a 10 MB policy is rejected by size before it is parsed', () => {
    const big = YAML.stringify(policy({ agentScopes: [{ identity: 'spiffe://x', operations: ['GET /' + 'a'.repeat(10 * 1024 * 1024)] }] }));
    const r = parsePolicies('big.yaml', big);
    assert.deepEqual(r.policies, []);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.path, '(root)');
    assert.match(r.errors[0]!.reason, new RegExp(`larger than the ${MAX_POLICY_BYTES}-byte limit`));
  });

  test('YAML syntax errors, empty files and multi-document files', () => {
    assert.match(parsePolicies('f', 'spec: [').errors[0]!.reason, /^not valid YAML\/JSON/);
    assert.deepEqual(parsePolicies('f', '').errors, [{ source: 'f', path: '(root)', reason: 'no policy in this file' }]);
    const two = `${YAML.stringify(policy({}, 'a'))}---\n${YAML.stringify(policy({ mode: 'x' }, 'b'))}`;
    const r = parsePolicies('two.yaml', two);
    assert.equal(r.policies.length, 1);
    assert.deepEqual(r.errors.map((e: PolicyError) => [e.document, e.path]), [[1, 'spec.mode']]);
  });

  test('property: any unknown key added anywhere in a valid policy is reported at its exact path', () => {
    const base = YAML.parse(readFileSync(path.join(EXAMPLES, 'shop-enforce.yaml'), 'utf8')) as Record<string, unknown>;
    // Paths to every object node of the spec (where a stray key can be put).
    const objects: string[][] = [];
    const walk = (v: unknown, at: string[]): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, String(i)]));
      else if (v && typeof v === 'object') {
        // Maps with free keys (thresholds, matchLabels) accept any key by design.
        if (!['thresholds', 'matchLabels'].includes(at.at(-1) ?? '')) objects.push(at);
        for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
      }
    };
    walk(base.spec, ['spec']);
    fc.assert(fc.property(fc.constantFrom(...objects), fc.stringMatching(/^[a-z][a-zA-Z]{2,12}X$/), (at, key) => {
      const doc = structuredClone(base);
      let node = doc as Record<string, unknown>;
      for (const p of at) node = node[p] as Record<string, unknown>;
      node[key] = 1;
      const errors = validatePolicyObject(doc, { baseDir: EXAMPLES }).errors;
      assert.deepEqual(errors, [{ path: fieldPath('/' + [...at, key].join('/')), reason: 'unknown field' }]);
    }), { numRuns: 200 });
  });
});

describe('policy -> engine settings', () => {
  test('call-graph denies become engine deny rules in enforce mode only', () => {
    const deny = { from: 'spiffe://cluster.local/ns/a/sa/b', methods: ['GET', 'DELETE'], paths: ['/users/*'] };
    const enforce = engineSettingsFor({ mode: 'enforce', callGraph: { deny: [deny] } });
    assert.deepEqual(enforce.engine.denyRules, [
      { name: 'call-graph-deny-0', identity: deny.from, method: 'GET', path: '/users/*' },
      { name: 'call-graph-deny-0', identity: deny.from, method: 'DELETE', path: '/users/*' },
    ]);
    const monitor = engineSettingsFor({ mode: 'monitor', callGraph: { deny: [deny] } });
    assert.deepEqual(monitor.engine.denyRules, []);
    assert.deepEqual(monitor.notApplied, [], 'monitor mode: the call-graph detector reports them');
    assert.deepEqual(monitor.detectors.lateral?.callGraph, { default: 'allow', allow: [], deny: [deny] });
  });

  test('thresholds, JWT issuers, rate limits and agent scopes map onto detector settings', () => {
    const spec = parsePolicies('shop', readFileSync(path.join(EXAMPLES, 'shop-enforce.yaml'), 'utf8'), { baseDir: EXAMPLES }).policies[0]!.spec;
    const s = engineSettingsFor(spec).detectors;
    assert.equal(s.bola?.foreignThreshold, 2);
    assert.deepEqual(s.auth?.trustedIssuers, ['https://login.example.com/']);
    assert.ok(s.auth?.jwks?.["https://login.example.com/"]?.keys?.length === 1);
    const limit = s.resource?.limits?.[0];
    assert.equal(limit?.limit, 20);
    assert.equal(limit?.windowMs, 60_000);
    assert.ok(new RegExp(limit!.operation).test('POST orders.shop.svc /orders'));
    assert.ok(!new RegExp(limit!.operation).test('GET orders.shop.svc /orders'));
    const scope = s.lateral?.scopes?.[0];
    assert.equal(scope?.identity, 'spiffe://cluster.local/ns/agents/sa/support-bot');
    assert.ok(scope!.allow.some((re) => new RegExp(re).test('GET orders.shop.svc /orders/{id}')));
    assert.ok(!scope!.allow.some((re) => new RegExp(re).test('DELETE orders.shop.svc /orders/{id}')));
  });
});

describe('policy -> filter tables', () => {
  test('whole-identity denies (enforce only) and body sampling; the result passes the filter schema', () => {
    const spec = {
      mode: 'enforce' as const,
      sampling: { bodyRate: 0.125 },
      callGraph: { deny: [{ from: 'spiffe://cluster.local/ns/a/sa/x' }, { from: 'spiffe://cluster.local/ns/a/sa/y', paths: ['/admin'] }, { from: 'spiffe://cluster.local/ns/b/*' }] },
    };
    const policy = filterPolicyFor(spec);
    assert.deepEqual(policy, { denyIdentities: ['spiffe://cluster.local/ns/a/sa/x'], sampling: { percent: 12.5 } });
    assert.doesNotThrow(() => buildFilterTables(policy));
    assert.deepEqual(filterPolicyFor({ ...spec, mode: 'monitor' }), { sampling: { percent: 12.5 } });
  });
});
