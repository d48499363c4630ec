// Object references in a request: IDs in the path, in id-named query parameters, and in id-named
// JSON body fields and GraphQL arguments. Path segments count as IDs when the baseline templater
// says so, when they mix letters and digits (slugs, user names, codes), or when their parent
// collection has shown many distinct children (learned, bounded), as API inventories do.
import { LRUCache } from 'lru-cache';
import type { Exchange } from './exchange.ts';
import { pathOnly } from './exchange.ts';
import { templateSegment } from './operation.ts';
import { graphqlLiteralArgs, graphqlOf, jsonOf, queryParams, scalarFields } from './body.ts';
import { boundedMap, reclaimSaved, type EventClock } from './state.ts';
import { sha256Hex } from './jwt.ts';
import type { StateCaps } from './policy-settings.ts';
import { STRUCTURED_CODEC, type StateCodec, type StateRegistry } from './state-snapshot.ts';
import type { KeyedHash } from './keyed-hash.ts';

export interface ObjectRef {
  /** Normalized ID (long IDs are hashed so a 10 KB ID costs what a short one does). */
  id: string;
  /** The resource type: service + path template with IDs as {} (+ ?param or #field). */
  collection: string;
  where: 'path' | 'query' | 'body';
}

const MAX_ID_CHARS = 128;
const MAX_REFS = 32;
/** Distinct children after which a path position is a parameter. */
const PARAMETRIC_CHILDREN = 8;
const ID_LIKE_CHILDREN = 3;
const MAX_CHILDREN_TRACKED = 64;
/** Requests after which a child of a parametric parent is a static segment (login, me). */
const STATIC_RECURRENCE = 3;
const SEGMENT_HASHES = 4096;
const CHILDREN_TTL_MS = 24 * 3600_000;
/** Starts a parent key saved with hashed segments (a service name never starts with it). */
const SAVED_KEY_MARK = '#';

export const ID_NAME = /^(id|ids|uuid|guid|[A-Za-z0-9]*[_-](id|uuid|guid|ID)|[a-z0-9]*(Id|ID|Uuid|UUID|Guid))$/;
/** API version segments (v1, v2.1): never an ID, never a collection name. */
export const VERSION = /^v\d+(\.\d+)*$/i;
const HAS_DIGIT = /\d/;
const HAS_LETTER = /[A-Za-z]/;

export function normalizeId(raw: string): string {
  const v = raw.trim();
  return v.length > MAX_ID_CHARS ? `sha256:${sha256Hex(v, 24)}` : v;
}

/** Children of one parent path: how often each segment followed it. Restored entries are keyed by
 *  keyed hashes of the segments (`hashed`): path segments can be IDs, and IDs can be secrets. */
interface Children { counts: Map<string, number>; idLike: number; parametric: boolean; hashed?: true }

/** Persists children with every segment replaced by its keyed hash; restored entries stay hashed. */
function hashedChildrenCodec(ids: KeyedHash): StateCodec<Children> {
  return {
    encode: (c) => STRUCTURED_CODEC.encode({ ...c, counts: c.hashed ? c.counts : new Map([...c.counts].map(([k, n]) => [ids.of(k), n])), hashed: true }),
    decode: (json) => {
      const c = STRUCTURED_CODEC.decode(json) as Children;
      if (!(c.counts instanceof Map) || typeof c.idLike !== 'number' || typeof c.parametric !== 'boolean') throw new Error('not a children entry');
      // Rows saved before segments were hashed hold raw segments: dropped, never saved again.
      if (c.hashed !== true) throw new Error('raw path segments (saved by an older version)');
      return c;
    },
  };
}

/** Learns, per service and path position, how many distinct values follow a parent path. */
export class CollectionLearner {
  readonly #children: LRUCache<string, Children>;
  readonly #ids: KeyedHash | undefined;
  readonly #clock: EventClock;
  /** Hashes of recent segments (in memory only): restored entries are looked up by hash on every
   *  request through them, and most segments (collection names) recur. */
  readonly #hashes = new LRUCache<string, string>({ max: SEGMENT_HASHES });
  /** Until then the map may hold restored entries under saved (hashed) parent keys. */
  #hashedUntil = -Infinity;

  constructor(clock: EventClock, caps: StateCaps, registry?: StateRegistry) {
    this.#ids = registry?.ids;
    this.#clock = clock;
    // A parent path holds the segments judged static so far, which an ID can be before its position
    // is known to hold IDs (/users/alice): parent keys are saved with hashed segments too.
    const keys = { saved: (k: string) => this.#savedKey(k), restored: (n: number) => { if (n > 0) this.#hashedUntil = clock.now() + CHILDREN_TTL_MS; } };
    this.#children = boundedMap(clock, { caps, ttlMs: CHILDREN_TTL_MS, sizeOf: (k) => 2048 + k.length * 2, persist: { registry, name: 'objects.collections', ...(registry ? { codec: hashedChildrenCodec(registry.ids), keys } : {}) } });
  }

  #hashOf(segment: string): string {
    let h = this.#hashes.get(segment);
    if (h === undefined && this.#ids !== undefined) { h = this.#ids.of(segment); this.#hashes.set(segment, h); }
    return h ?? segment;
  }

  /** "service /a/{}/b" saved as "#service /<hash a>/{}/<hash b>" (already saved keys unchanged). */
  #savedKey(key: string): string {
    if (key.startsWith(SAVED_KEY_MARK)) return key;
    const space = key.indexOf(' ');
    return `${SAVED_KEY_MARK}${key.slice(0, space)} ${key.slice(space + 1).split('/').map((seg) => (seg === '' || seg === '{}' ? seg : this.#hashOf(seg))).join('/')}`;
  }

  /** The parent's entry; a restored one is found by its saved key and moved to the raw key. */
  #entryOf(parentKey: string): Children | undefined {
    const entry = this.#children.get(parentKey);
    if (entry !== undefined || this.#clock.now() >= this.#hashedUntil) return entry;
    return reclaimSaved(this.#children, this.#savedKey(parentKey), parentKey);
  }

  /** Path segments with each ID replaced by "{}", and the IDs found. Under a parametric parent a
   *  segment stays static only once it has recurred (login, register, me), as inventories do.
   *  `routeTemplate` is the request's template when the sidecar filter gave one: its parameters
   *  come from the exact table the server pushes (the inventory's learned templates and the specs),
   *  so a position the inventory or a spec calls a parameter is an ID here too, learned or not. */
  resolve(service: string, path: string, learn: boolean, routeTemplate?: string): { template: string; ids: string[] } {
    const segments = pathOnly(path).split('/', 64);
    const known = routeTemplate?.split('/', 64);
    const parameterAt = (i: number): boolean => known !== undefined && known.length === segments.length && known[i]!.startsWith('{') && known[i]!.endsWith('}');
    const out: string[] = [];
    const ids: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      if (segment === '') { out.push(segment); continue; }
      const parentKey = `${service} ${out.join('/')}`;
      const entry = this.#entryOf(parentKey);
      const child = entry?.hashed === true ? this.#hashOf(segment) : segment;
      const seen = entry?.counts.get(child) ?? 0;
      const idLike = templateSegment(segment) !== segment
        || (HAS_DIGIT.test(segment) && HAS_LETTER.test(segment) && !VERSION.test(segment) && segment.length >= 3)
        || segment.length > MAX_ID_CHARS;
      const isId = idLike || parameterAt(i) || (entry?.parametric === true && seen < STATIC_RECURRENCE);
      if (learn && segment.length <= MAX_ID_CHARS) {
        const e: Children = entry ?? { counts: new Map<string, number>(), idLike: 0, parametric: false };
        if (e.counts.has(child) || e.counts.size < MAX_CHILDREN_TRACKED) {
          if (seen === 0 && idLike) e.idLike++;
          e.counts.set(child, seen + 1);
        }
        // Many distinct children, or a few that are plainly identifiers: the position holds IDs.
        if (e.counts.size >= PARAMETRIC_CHILDREN || e.idLike >= ID_LIKE_CHILDREN) e.parametric = true;
        if (entry === undefined) this.#children.set(parentKey, e);
      }
      if (isId) { ids.push(normalizeId(decodeSafe(segment))); out.push('{}'); } else out.push(segment);
    }
    return { template: out.join('/'), ids };
  }
}

export function decodeSafe(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

const refsOf = new WeakMap<Exchange, readonly ObjectRef[]>();

/** Every object the request names (computed once per exchange). */
export function objectRefs(exchange: Exchange): readonly ObjectRef[] {
  const cached = refsOf.get(exchange);
  if (cached !== undefined) return cached;
  const refs = findObjectRefs(exchange);
  refsOf.set(exchange, refs);
  return refs;
}

function findObjectRefs(exchange: Exchange): ObjectRef[] {
  const { request } = exchange;
  const service = request.authority;
  const refs: ObjectRef[] = [];
  const ids = exchange.pathIds ?? [];
  const base = exchange.resource !== undefined ? exchange.resource.slice(request.method.length + 1) : `${service} ${exchange.template}`;
  for (const id of ids) refs.push({ id, collection: base, where: 'path' });
  for (const [name, value] of queryParams(request.path)) {
    if (refs.length >= MAX_REFS) break;
    if (ID_NAME.test(name) && value !== '') refs.push({ id: normalizeId(value), collection: `${base}?${name}`, where: 'query' });
  }
  const graphql = graphqlOf(request);
  if (graphql !== undefined) {
    for (const vars of graphql.variables) {
      for (const f of scalarFields(vars, 64)) {
        if (refs.length >= MAX_REFS) break;
        if (ID_NAME.test(f.key)) refs.push({ id: normalizeId(f.value), collection: `${base}#${f.key}`, where: 'body' });
      }
    }
    for (const [name, value] of graphqlLiteralArgs(graphql.queries)) {
      if (refs.length >= MAX_REFS) break;
      if (ID_NAME.test(name)) refs.push({ id: normalizeId(value), collection: `${base}#${name}`, where: 'body' });
    }
  } else if (request.method !== 'POST') {
    // A REST create (POST) names the objects it links to, not one it accesses: only other methods count.
    for (const f of scalarFields(jsonOf(request.body), 64)) {
      if (refs.length >= MAX_REFS) break;
      if (ID_NAME.test(f.key) && f.path === f.key) refs.push({ id: normalizeId(f.value), collection: `${base}#${f.key}`, where: 'body' });
    }
  }
  return refs.slice(0, MAX_REFS);
}
