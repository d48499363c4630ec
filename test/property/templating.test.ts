// Properties of route templating: the baseline rules (shared with the Wasm filter) and the learner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { templatePath, templateSegment, BASELINE_PLACEHOLDERS } from '../../extproc/src/engine/operation.ts';
import { PathLearner, TemplateMatcher, filterTemplateEntries, learnedTemplateTable, splitPath } from '../../extproc/src/inventory/templating.ts';

const word = fc.stringMatching(/^[a-z]{2,12}$/);
const segment = fc.oneof(word, fc.nat().map(String), fc.uuid(), fc.stringMatching(/^[A-Za-z0-9._~-]{1,30}$/));
const path = fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`);

test('baseline: deterministic, per segment, idempotent, keeps the segment count', () => {
  fc.assert(fc.property(path, (p) => {
    const t = templatePath(p);
    assert.equal(templatePath(p), t);
    assert.equal(templatePath(t), t, 'a template templates to itself');
    assert.equal(t.split('/').length, p.split('/').length);
    assert.deepEqual(t.split('/'), p.split('/').map(templateSegment));
  }));
});

test('baseline: each rule recognises its values', () => {
  fc.assert(fc.property(fc.nat(), (n) => assert.equal(templateSegment(String(n)), '{id}')));
  fc.assert(fc.property(fc.uuid(), (u) => assert.equal(templateSegment(u), '{uuid}')));
  fc.assert(fc.property(fc.stringMatching(/^[0-9a-f]{15,40}[0-9]$/), (h) => assert.equal(templateSegment(h), '{hex}')));
  fc.assert(fc.property(fc.emailAddress().filter((e) => /\.[A-Za-z]{2,}$/.test(e) && !e.includes('/')), (e) => assert.equal(templateSegment(e), '{email}')));
  fc.assert(fc.property(fc.date({ min: new Date('1990-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }), (d) => {
    assert.equal(templateSegment(d.toISOString().slice(0, 10)), '{date}');
    assert.equal(templateSegment(d.toISOString()), '{date}');
  }));
  fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{17,60}$/), (s) => {
    const token = `aA1${s}`;
    if (templateSegment(token) !== '{token}') assert.match(token, /^[0-9a-f]+$|^\d+$/i, 'only hex-like or numeric tokens go to the earlier rules');
  }));
});

test('baseline: words, camelCase names, slugs and versions stay static', () => {
  fc.assert(fc.property(fc.array(word, { minLength: 1, maxLength: 4 }), (parts) => {
    for (const s of [parts.join('-'), parts.join('_'), parts.map((p, i) => (i ? p[0]!.toUpperCase() + p.slice(1) : p)).join(''), `v${parts.length}`]) {
      assert.equal(templateSegment(s), s, s);
    }
  }));
  for (const p of BASELINE_PLACEHOLDERS) assert.equal(templateSegment(p), p);
});

test('learner: a closed set of static endpoints is never turned into a parameter', () => {
  fc.assert(fc.property(fc.uniqueArray(word, { minLength: 1, maxLength: 12 }), fc.integer({ min: 5, max: 30 }), (names, hits) => {
    const learner = new PathLearner();
    for (let i = 0; i < hits; i++) for (const n of names) learner.observe(`/api/${n}`);
    assert.deepEqual(learner.templates(), names.map((n) => `/api/${n}`).sort());
  }));
});

test('learner: an open set of identifiers becomes one parameter; hot static siblings and versions stay', () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.stringMatching(/^[a-z]{3,8}[.-][a-z]{2,8}\d{0,3}$/), { minLength: 8, maxLength: 60 }),
    fc.uniqueArray(word, { minLength: 1, maxLength: 3 }),
    (ids, statics) => {
      fc.pre(!ids.some((i) => statics.includes(i)));
      const learner = new PathLearner();
      for (const s of statics) for (let i = 0; i < 40; i++) learner.observe(`/v2/users/${s}`);
      for (const id of ids) learner.observe(`/v2/users/${id}`);
      for (const id of ids.slice(0, 4)) learner.observe(`/v2/users/${id}/orders`);
      const templates = learner.templates();
      assert.ok(templates.includes('/v2/users/{user}'), templates.join(' '));
      for (const s of statics) assert.ok(templates.includes(`/v2/users/${s}`), `${s} stays static: ${templates.join(' ')}`);
      assert.ok(templates.includes('/v2/users/{user}/orders'));
      for (const id of ids) assert.equal(learner.templateOf(`/v2/users/${id}`), '/v2/users/{user}');
      assert.equal(learner.templateOf(`/v2/users/someone-new`), '/v2/users/{user}', 'new values match the learned template');
    },
  ), { numRuns: 50 });
});

test('learner: templateOf keeps the segment count and agrees with the template table', () => {
  fc.assert(fc.property(fc.array(path, { minLength: 1, maxLength: 80 }), (paths) => {
    const learner = new PathLearner();
    for (const p of paths) learner.observe(p);
    const matcher = new TemplateMatcher(learner.templates());
    for (const p of paths) {
      const t = learner.templateOf(p);
      assert.equal(splitPath(t).length, splitPath(p).length);
      assert.equal(matcher.match(p), t);
    }
    const restored = PathLearner.deserialize(JSON.parse(JSON.stringify(learner.serialize())));
    assert.deepEqual(restored.templates(), learner.templates(), 'persistence keeps what was learned');
  }), { numRuns: 100 });
});

test('learner: bounded by its node cap whatever arrives', () => {
  fc.assert(fc.property(fc.array(fc.array(fc.string({ minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 }), { maxLength: 300 }), (paths) => {
    const learner = new PathLearner({ maxNodes: 50, maxChildren: 10 });
    for (const p of paths) learner.observe(`/${p.join('/')}`);
    assert.ok(learner.nodeCount <= 50);
  }), { numRuns: 50 });
});

test('template table: learned services list every template, so static siblings win in the filter', () => {
  const learner = new PathLearner();
  for (let i = 0; i < 30; i++) learner.observe('/users/v1/login');
  for (const u of ['alice.lee', 'bob.ng', 'chen.wu', 'dave.k', 'erin.m', 'farah.s']) learner.observe(`/users/v1/${u}`);
  const plain = new PathLearner();
  plain.observe('/health');
  plain.observe('/items/42');
  const table = learnedTemplateTable(new Map([['users.svc', learner], ['plain.svc', plain]]));
  assert.deepEqual(table, { version: 1, services: { 'users.svc': ['/users/v1/login', '/users/v1/{user}'] } });
  const filter = new TemplateMatcher(table.services['users.svc']!);
  assert.equal(filter.match('/users/v1/login'), '/users/v1/login');
  assert.equal(filter.match('/users/v1/zoe.x'), '/users/v1/{user}');
});

/** The Wasm filter's table semantics (filter/assembly/template.ts, filter-config/build.ts): most
 *  literal segments first, a parameter matches any non-empty segment, first match wins. */
function filterLookup(templates: readonly string[], path: string): string | undefined {
  const literals = (t: string): number => t.split('/').filter((s) => s.length > 0 && !/^\{.*\}$/.test(s)).length;
  const ordered = [...templates].sort((a, b) => literals(b) - literals(a) || a.localeCompare(b));
  const segments = path.split('/');
  return ordered.find((t) => {
    const parts = t.split('/');
    return parts.length === segments.length && parts.every((p, i) => (/^\{.*\}$/.test(p) ? segments[i] !== '' : p === segments[i]));
  });
}

test('template table: the filter, applying the pushed table, templates every observed path as the inventory does', () => {
  let withTable = 0;
  const idLike = fc.oneof(fc.nat().map(String), fc.stringMatching(/^[a-z]{3,6}[.-][a-z]{2,6}\d{0,3}$/));
  fc.assert(fc.property(
    fc.uniqueArray(word, { minLength: 1, maxLength: 4 }),
    fc.uniqueArray(idLike, { minLength: 0, maxLength: 30 }),
    fc.uniqueArray(word, { minLength: 0, maxLength: 3 }),
    (collections, ids, subs) => {
      const learner = new PathLearner();
      const paths: string[] = [];
      for (const c of collections) {
        for (let i = 0; i < 10; i++) paths.push(`/api/${c}`, `/api/${c}/me`);
        for (const id of ids) {
          paths.push(`/api/${c}/${id}`);
          for (const s of subs) paths.push(`/api/${c}/${id}/${s}`);
        }
      }
      for (const p of paths) learner.observe(p);
      const learned = learnedTemplateTable(new Map([['svc', learner]]));
      const table = learned.services.svc;
      if (!table) return; // nothing beyond the baseline: the filter's own rules apply
      withTable++;
      assert.deepEqual(filterTemplateEntries(learned, 'svc').map((e) => e.template), table);
      for (const p of paths) assert.equal(filterLookup(table, p), learner.templateOf(p), p);
    },
  ), { numRuns: 200 });
  assert.ok(withTable > 50, `most runs learn something (${withTable})`);
});
