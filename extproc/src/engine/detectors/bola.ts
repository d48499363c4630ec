// API1 BOLA: per caller, which objects it may reasonably touch (those it created, those the API
// showed it, those whose owner field names it) and which it touches anyway: distinct objects owned
// by someone else, distinct objects nobody showed it, guessable ID walks, bursts of 403/404 on
// object operations, and the same ID parameter given twice with different values.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { actionNames, compilePattern, findingFor, isSuccess, type DetectorContext } from '../detector-context.ts';
import { boundedMap, reclaimSaved, WindowCount, WindowDistinct, type EventClock } from '../state.ts';
import { ID_NAME, normalizeId, objectRefs, type ObjectRef } from '../objects.ts';
import { graphqlOf, jsonOf, scalarFields } from '../body.ts';
import { findPollution, type IdReference } from '../parameter-pollution.ts';
import { CounterWalks, SortedNameWalks } from '../id-walks.ts';
import type { BolaSettings } from '../policy-settings.ts';
import type { KeyedHash } from '../keyed-hash.ts';
import { scanSensitive } from '../../inspect/sensitive.ts';

export const BOLA_DETECTOR = 'bola';

type Knowledge = 'own' | 'seen';

/** Who uses a collection, and who touches objects there that are not theirs. When that is common
 *  (a catalogue, public posts), the collection is public-like and unexplained access is normal. */
interface CollectionUse { callers: Set<string>; strangers: Set<string> }
const MAX_COLLECTION_CALLERS = 512;
const PUBLIC_MIN_STRANGERS = 3;
const PUBLIC_STRANGER_SHARE = 0.3;
const STRANGER_MIN_REQUESTS = 2;

/** Per-caller state; the windows are created on first use, so a flood of one-shot identities
 *  costs a few numbers each. */
interface CallerObjects {
  foreign?: WindowDistinct;
  unexplained?: WindowDistinct;
  denied?: WindowCount;
  /** Counters in recent IDs the caller had no reason to know, for guessable-walk detection. */
  counters?: CounterWalks;
  /** Names it had no reason to know, per collection, for sorted (wordlist) walks. */
  names?: SortedNameWalks;
  flaggedUntil: number;
  objectRequests: number;
}

const OWNER_KEY = /^(owner|user|username|user_?name|user_?id|userid|owner_?id|ownerid|created_?by|createdby|author|author_?id|account_?id|customer_?id)$/i;
const OWNER_PARENT = /(^|\.)(owner|user|author|created_?by|createdby|account|customer)$/i;
const OWNER_CHILD = /^(id|name|username|user_?name|email|login)$/i;
const TOKENISH = /^[\w.@:+-]{1,128}$/;
const MAX_LEARNED_PER_RESPONSE = 64;
/** Counter readings remembered per caller (up to three per ID). */
const COUNTER_MEMORY = 48;
const NAME_WALK_COLLECTIONS = 8;
/** Names in sorted order are a weaker signal than +1 steps (7 random names come sorted once in
 *  5040 orders), so a wordlist walk needs this many more than a counter walk. */
const NAME_WALK_EXTRA = 2;
const EVIDENCE_CHARS = 64;
/** How long the caller is taken to know an object it created or was shown. */
const KNOWN_TTL_MS = 24 * 3600_000;

/** The field an object reference came from (its query parameter or body field; none in a path),
 *  as a hint for the sensitive-data scanner. */
function fieldOf(ref: ObjectRef): string {
  const at = Math.max(ref.collection.lastIndexOf('?'), ref.collection.lastIndexOf('#'));
  return ref.where === 'path' || at === -1 ? '' : ref.collection.slice(at + 1);
}

/** The single principal a response's owner fields name, or undefined (none, or several: a list). */
export function ownerOf(body: unknown): string | undefined {
  let owner: string | undefined;
  for (const f of scalarFields(body, 256)) {
    const parent = f.path.slice(0, Math.max(0, f.path.length - f.key.length - 1));
    if (!(OWNER_KEY.test(f.key) || (OWNER_CHILD.test(f.key) && OWNER_PARENT.test(parent)))) continue;
    if (owner !== undefined && owner !== f.value) return undefined;
    owner = f.value;
  }
  return owner;
}

export class BolaDetector implements Detector {
  readonly name = BOLA_DETECTOR;
  readonly #settings: BolaSettings;
  readonly #known: LRUCache<string, Knowledge>;
  readonly #ids: KeyedHash | undefined;
  readonly #clock: EventClock;
  /** Until then #known may hold restored entries under hashed keys. */
  #hashedUntil = -Infinity;
  readonly #callers: LRUCache<string, CallerObjects>;
  readonly #collections: LRUCache<string, CollectionUse>;
  readonly #privileged: RegExp;

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#settings = settings.bola;
    // Keyed by caller and raw object ID in memory, and saved under the keyed hash of that key
    // (keyed-hash.ts): values from bodies can be secrets. Restored entries stay hashed, so lookups
    // also try the hash until they have expired. Values the sensitive-data scanner recognises are
    // never recorded at all.
    this.#clock = clock;
    const ids = context.state?.ids;
    this.#ids = ids;
    this.#known = boundedMap(clock, { caps: settings.caps, ttlMs: KNOWN_TTL_MS, sizeOf: (k) => 64 + k.length * 2, persist: {
      registry: context.state, name: 'bola.ownership',
      keys: { saved: (k) => (k.includes('\u0000') && ids !== undefined ? ids.of(k) : k), restored: (n) => { if (n > 0) this.#hashedUntil = clock.now() + KNOWN_TTL_MS; } },
    } });
    // Enumeration windows (minutes) are not persisted.
    this.#callers = boundedMap(clock, { caps: settings.caps, ttlMs: 2 * settings.bola.windowMs, sizeOf: (k) => 2048 + k.length * 2 });
    this.#collections = boundedMap(clock, { caps: settings.caps, ttlMs: 7 * 24 * 3600_000, sizeOf: (k) => 16_384 + k.length * 2, persist: { registry: context.state, name: 'bola.collections' } });
    this.#privileged = compilePattern(settings.bfla.privilegedPattern, 'privileged operations', '');
  }

  /** Object references BOLA judges: none on privileged (admin) operations, which act on others'
   *  objects by design and are BFLA's to judge; none in public-like collections. */
  #judgedRefs(exchange: Exchange): ObjectRef[] {
    if (actionNames(exchange).some((n) => this.#privileged.test(n) || this.#privileged.test(n.toLowerCase()))) return [];
    return objectRefs(exchange).filter((r) => !this.#publicLike(r.collection));
  }

  #publicLike(collection: string): boolean {
    const use = this.#collections.get(collection);
    return use !== undefined && use.strangers.size >= PUBLIC_MIN_STRANGERS && use.strangers.size >= PUBLIC_STRANGER_SHARE * use.callers.size;
  }

  #recordUse(collection: string, caller: string, stranger: boolean): void {
    let use = this.#collections.get(collection);
    if (use === undefined) { use = { callers: new Set(), strangers: new Set() }; this.#collections.set(collection, use); }
    if (use.callers.size < MAX_COLLECTION_CALLERS) use.callers.add(caller);
    if (stranger && use.strangers.size < MAX_COLLECTION_CALLERS) use.strangers.add(caller);
  }

  #knows(exchange: Exchange, ref: ObjectRef): boolean {
    if (exchange.userNames?.includes(ref.id) === true) return true;
    const key = `${exchange.callerKey}\u0000${ref.id}`;
    if (this.#known.has(key)) return true;
    if (this.#ids === undefined || this.#clock.now() >= this.#hashedUntil) return false;
    // A restored entry: found by its hash, then kept under the raw key (hashed once).
    return reclaimSaved(this.#known, this.#ids.of(key), key) !== undefined;
  }

  /** Records what the caller knows of an object, unless the ID is a secret or personal data (a
   *  password, a card number, an email): those are never recorded, not even hashed. 'seen' never
   *  downgrades 'own'. */
  #remember(caller: string, id: string, field: string, knowledge: Knowledge): void {
    if (scanSensitive(id, field).length > 0) return;
    const key = `${caller}\u0000${id}`;
    if (knowledge === 'own' || !this.#known.has(key)) this.#known.set(key, knowledge);
  }

  #state(caller: string): CallerObjects {
    let s = this.#callers.get(caller);
    if (s === undefined) {
      s = { flaggedUntil: 0, objectRequests: 0 };
      this.#callers.set(caller, s);
    }
    return s;
  }

  #finding(exchange: Exchange, summary: string, evidence: Record<string, unknown>, severity: Finding['severity'] = 'high'): Finding {
    return findingFor(this.name, exchange, { category: 'API1:2023-BOLA', severity, summary, evidence, enforcement: 'deny' });
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const refs = this.#judgedRefs(exchange);
    const findings: Finding[] = [];
    const pollution = this.#pollution(exchange);
    if (pollution !== undefined) findings.push(pollution);
    const unknown = refs.filter((r) => !this.#knows(exchange, r));
    if (unknown.length === 0) return findings;
    const now = exchange.request.time;
    const state = this.#state(exchange.callerKey);
    if (state.flaggedUntil > now) {
      findings.push(this.#finding(exchange, 'caller flagged for object enumeration keeps requesting objects it does not own',
        { objects: unknown.slice(0, 5).map((r) => r.id), flaggedUntil: state.flaggedUntil }));
      return findings;
    }
    const walk = this.#walk(state, unknown);
    if (walk !== undefined) {
      state.flaggedUntil = now + this.#settings.windowMs;
      findings.push(this.#finding(exchange, walk.summary, walk.evidence));
    }
    return findings;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const response = exchange.response;
    if (response === undefined) return undefined;
    const refs = this.#judgedRefs(exchange);
    const findings: Finding[] = [];
    const now = exchange.request.time;
    const unknown = refs.filter((r) => !this.#knows(exchange, r));
    const json = jsonOf(response.body);
    if (isSuccess(response.status) && refs.length > 0) {
      // A stranger counts once it has made a few object requests, so a flood of one-shot
      // identities (a Sybil attack) cannot make a private collection look public.
      const state = unknown.length > 0 ? this.#state(exchange.callerKey) : this.#callers.get(exchange.callerKey);
      if (state !== undefined) state.objectRequests++;
      const established = (state?.objectRequests ?? 0) >= STRANGER_MIN_REQUESTS;
      for (const r of refs) this.#recordUse(r.collection, exchange.callerKey, established && unknown.includes(r));
    }
    if (unknown.length > 0) {
      const state = this.#state(exchange.callerKey);
      if (response.status === 403 || response.status === 404) {
        const denied = (state.denied ??= new WindowCount(this.#settings.windowMs)).add(now);
        if (denied === this.#settings.deniedBurst) {
          state.flaggedUntil = now + this.#settings.windowMs;
          findings.push(this.#finding(exchange, `${denied} object requests answered 403/404 in the window`,
            { denied, threshold: this.#settings.deniedBurst, windowMs: this.#settings.windowMs }, 'medium'));
        }
      } else if (isSuccess(response.status)) {
        const owner = ownerOf(json);
        const names = exchange.userNames ?? [];
        for (const ref of unknown) {
          if (owner !== undefined && names.length > 0) {
            if (names.includes(owner)) { this.#remember(exchange.callerKey, ref.id, fieldOf(ref), 'own'); continue; }
            const foreign = (state.foreign ??= new WindowDistinct(this.#settings.windowMs));
            const before = foreign.size(now);
            const count = foreign.add(`${ref.collection}\u0000${ref.id}`, now);
            if (count > before && count >= this.#settings.foreignThreshold) {
              state.flaggedUntil = now + this.#settings.windowMs;
              findings.push(this.#finding(exchange, `caller read ${count} distinct objects owned by other principals`,
                { object: ref.id, collection: ref.collection, owner: owner.slice(0, 64), distinctForeign: count, threshold: this.#settings.foreignThreshold, windowMs: this.#settings.windowMs }));
            }
          } else {
            const unexplained = (state.unexplained ??= new WindowDistinct(this.#settings.windowMs));
            const before = unexplained.size(now);
            const count = unexplained.add(`${ref.collection}\u0000${ref.id}`, now);
            if (count > before && count >= this.#settings.unexplainedThreshold) {
              state.flaggedUntil = now + this.#settings.windowMs;
              findings.push(this.#finding(exchange, `caller accessed ${count} distinct objects it neither created nor was shown`,
                { object: ref.id, collection: ref.collection, distinctUnexplained: count, threshold: this.#settings.unexplainedThreshold, windowMs: this.#settings.windowMs }));
            }
          }
        }
      }
    }
    if (isSuccess(response.status)) this.#learn(exchange, json, objectRefs(exchange));
    return findings;
  }

  /** What a successful exchange teaches: IDs in the response were shown to the caller; values the
   *  caller sent to create something (and IDs a create returns) are its own. */
  #learn(exchange: Exchange, json: unknown, requested: readonly ObjectRef[]): void {
    const asked = new Set(requested.map((r) => r.id));
    const caller = exchange.callerKey;
    const { method } = exchange.request;
    const graphql = graphqlOf(exchange.request);
    const creates = graphql !== undefined ? graphql.mutation : method === 'POST' || method === 'PUT';
    let learned = 0;
    for (const f of scalarFields(json, 256)) {
      if (learned >= MAX_LEARNED_PER_RESPONSE) break;
      if (!ID_NAME.test(f.key) || !TOKENISH.test(f.value)) continue;
      const id = normalizeId(f.value);
      if (asked.has(id)) continue;
      this.#remember(caller, id, f.key, creates ? 'own' : 'seen');
      learned++;
    }
    if (creates && graphql === undefined && requested.length === 0) {
      for (const f of scalarFields(jsonOf(exchange.request.body), 32)) {
        if (TOKENISH.test(f.value) && !asked.has(f.value)) this.#remember(caller, normalizeId(f.value), f.key, 'own');
      }
    }
  }

  /** A guessable walk through IDs the caller was never given: consecutive values of one counter
   *  shape (numeric, prefixed, hex, base 36), or names in strictly sorted order in one collection. */
  #walk(state: CallerObjects, unknown: readonly ObjectRef[]): { summary: string; evidence: Record<string, unknown> } | undefined {
    const threshold = this.#settings.sequentialRun;
    for (const ref of unknown) {
      const counter = (state.counters ??= new CounterWalks(COUNTER_MEMORY)).observe(ref.id);
      if (counter !== undefined && counter.run >= threshold) {
        const { pattern, radix } = counter.reading;
        const plain = pattern === '{n}';
        return {
          summary: plain ? `sequential ID walk: ${counter.run} consecutive IDs the caller was never given`
            : `guessable ID walk: ${counter.run} consecutive values of ${pattern.slice(0, EVIDENCE_CHARS)} the caller was never given`,
          evidence: { kind: plain ? 'sequential' : 'counter', collection: ref.collection, id: ref.id.slice(0, EVIDENCE_CHARS), run: counter.run, threshold, pattern: pattern.slice(0, EVIDENCE_CHARS), radix },
        };
      }
      const sorted = (state.names ??= new SortedNameWalks(NAME_WALK_COLLECTIONS)).observe(ref.collection, ref.id);
      if (sorted >= threshold + NAME_WALK_EXTRA) {
        return {
          summary: `wordlist walk: ${sorted} names in sorted order the caller was never given`,
          evidence: { kind: 'sorted-names', collection: ref.collection, id: ref.id.slice(0, EVIDENCE_CHARS), run: sorted, threshold: threshold + NAME_WALK_EXTRA },
        };
      }
    }
    return undefined;
  }

  /** One object reference given twice with different values: which one does the server authorise?
   *  Where several established callers do it (a follow or multi-get API) it is how the API works,
   *  judged as public-like collections are. */
  #pollution(exchange: Exchange): Finding | undefined {
    const found = findPollution(exchange);
    if (found === undefined) return undefined;
    const usage = `pollution\u0000${operationKey(exchange)}\u0000${found.field}\u0000${found.first.where}\u0000${found.second.where}`;
    if (this.#publicLike(usage)) return undefined;
    const established = (this.#callers.get(exchange.callerKey)?.objectRequests ?? 0) >= STRANGER_MIN_REQUESTS;
    this.#recordUse(usage, exchange.callerKey, established);
    const place = (r: IdReference): Record<string, string> => ({ where: r.where, name: r.name.slice(0, EVIDENCE_CHARS), value: r.value.slice(0, EVIDENCE_CHARS) });
    return this.#finding(exchange, `parameter pollution: "${found.field.slice(0, EVIDENCE_CHARS)}" given twice with different values (${found.first.where} and ${found.second.where})`,
      { kind: 'parameter-pollution', field: found.field.slice(0, EVIDENCE_CHARS), places: [place(found.first), place(found.second)] }, 'medium');
  }

  /** For tests and the cardinality check: entries held. */
  get stateSizes(): { known: number; callers: number } {
    return { known: this.#known.size, callers: this.#callers.size };
  }
}
