// Learned route templating: beyond the baseline rules (engine/operation.ts), a path position that
// takes many distinct values becomes a parameter (/users/alice, /users/bob, ... -> /users/{user})
// while real static siblings (/users/me, /v2) stay. The result is an exact template table the
// server pushes to the Wasm filter (learnedTemplateTable).
//
// Learning works on a prefix tree of raw paths, per service. At each position:
//   - values the baseline rules recognise (numbers, UUIDs, dates, ...) form one parameter per
//     placeholder as soon as two distinct ones are seen (a lone one that prefixes several endpoints,
//     like the API date version "/2015-03-31/...", stays literal);
//   - the other literals are "static" when they are a version segment (v1, v2beta1) or "hot": hit
//     count above the largest jump (ratio >= HOT_RATIO) in their siblings' sorted hit counts, at
//     least HOT_MIN_HITS, and no run of two digits (values such as "alice698" are never static);
//     the rest are "values".
// The values become one parameter (together with any baseline placeholders there) when there are
// at least MIN_DISTINCT of them (2 beside baseline values) and they repeat little (mean hits <=
// MAX_MEAN_HITS), or are very many (>= MANY_DISTINCT) with a good share seen at most RARE_HITS
// times. Repetition tells a closed set of endpoints (each hit again and again) from an open set of
// identifiers. Children of merged values are merged too, and the rules apply again below them.
// Measured on 264 real public API specs (test/corpus/inventory-templating-real-specs.test.ts).
import { BASELINE_PLACEHOLDERS, templateSegment } from '../engine/operation.ts';

export const MIN_DISTINCT = 5;
export const MANY_DISTINCT = 50;
export const MAX_MEAN_HITS = 4;
export const RARE_HITS = 2;
export const MANY_RARE_SHARE = 0.3;
export const HOT_RATIO = 4;
export const HOT_MIN_HITS = 3;
const VERSION = /^v\d+(\.\d+)*((alpha|beta|rc|preview)\d*)?$/i;
const TWO_DIGITS = /\d\d/;
const BASELINE = new Set<string>(BASELINE_PLACEHOLDERS);

export interface LearnerLimits {
  /** Prefix-tree nodes per service; past it, paths are only counted where the tree already reaches. */
  maxNodes: number;
  /** Distinct literal children per node; past it, new literals share one overflow child. */
  maxChildren: number;
}

export const DEFAULT_LEARNER_LIMITS: LearnerLimits = { maxNodes: 20_000, maxChildren: 1_000 };
/** The overflow child of a full node: always a parameter. */
const OVERFLOW = '{*}';

interface PathNode {
  hits: number;
  /** Requests whose path ended here. */
  ends: number;
  children: Map<string, PathNode>;
}

/** Serialized form (persistence): [hits, ends, {segment: child}]. */
export type SerializedNode = [number, number, Record<string, SerializedNode>];

function newNode(): PathNode {
  return { hits: 0, ends: 0, children: new Map() };
}

export function splitPath(path: string): string[] {
  const q = path.indexOf('?');
  return (q === -1 ? path : path.slice(0, q)).split('/');
}

export function isParameter(segment: string): boolean {
  return segment.startsWith('{') && segment.endsWith('}');
}

function singular(word: string): string {
  const w = word.replace(/[^A-Za-z0-9_]/g, '');
  if (/ies$/i.test(w)) return `${w.slice(0, -3)}y`;
  if (/(ss|us)$/i.test(w)) return w;
  return w.replace(/s$/i, '');
}

/** Splits literal sibling hit counts into hot ones (above the largest big jump) and the rest. */
function hotLiterals(hits: Map<string, number>): Set<string> {
  const sorted = [...hits.values()].sort((a, b) => a - b);
  let cut = Infinity;
  let bestRatio = HOT_RATIO;
  for (let i = 0; i + 1 < sorted.length; i++) {
    const ratio = sorted[i + 1]! / Math.max(1, sorted[i]!);
    if (ratio >= bestRatio) {
      bestRatio = ratio;
      cut = sorted[i + 1]!;
    }
  }
  const hot = new Set<string>();
  for (const [literal, n] of hits) if (n >= cut && n >= HOT_MIN_HITS && !TWO_DIGITS.test(literal)) hot.add(literal);
  return hot;
}

export class PathLearner {
  readonly #limits: LearnerLimits;
  #root = newNode();
  #nodes = 1;
  #dirty = true;
  #templates: string[] = [];
  #matcher: TemplateMatcher = new TemplateMatcher([]);

  constructor(limits: LearnerLimits = DEFAULT_LEARNER_LIMITS) {
    this.#limits = limits;
  }

  get nodeCount(): number {
    return this.#nodes;
  }

  observe(path: string, count = 1): void {
    let node = this.#root;
    node.hits += count;
    for (const segment of splitPath(path).slice(1)) {
      let child = node.children.get(segment);
      if (!child) {
        if (this.#nodes >= this.#limits.maxNodes) return;
        const key = node.children.size >= this.#limits.maxChildren ? OVERFLOW : segment;
        child = node.children.get(key);
        if (!child) {
          child = newNode();
          node.children.set(key, child);
          this.#nodes++;
        }
      }
      child.hits += count;
      node = child;
    }
    node.ends += count;
    this.#dirty = true;
  }

  /** The learned templates ("/users/{user}/orders"), sorted. Recomputed only after new traffic. */
  templates(): string[] {
    this.#refresh();
    return this.#templates;
  }

  /** The template a concrete path belongs to, or the baseline template when none was learned. */
  templateOf(path: string): string {
    this.#refresh();
    return this.#matcher.match(path) ?? splitPath(path).map(templateSegment).join('/');
  }

  #refresh(): void {
    if (!this.#dirty) return;
    const out = new Set<string>();
    derive([this.#root], [''], out);
    this.#templates = [...out].sort();
    this.#matcher = new TemplateMatcher(this.#templates);
    this.#dirty = false;
  }

  serialize(): SerializedNode {
    const walk = (n: PathNode): SerializedNode => [n.hits, n.ends, Object.fromEntries([...n.children].map(([k, c]) => [k, walk(c)]))];
    return walk(this.#root);
  }

  static deserialize(data: SerializedNode, limits: LearnerLimits = DEFAULT_LEARNER_LIMITS): PathLearner {
    const learner = new PathLearner(limits);
    let count = 0;
    const walk = (d: SerializedNode): PathNode => {
      count++;
      const node: PathNode = { hits: Number(d[0]) || 0, ends: Number(d[1]) || 0, children: new Map() };
      for (const [k, c] of Object.entries(d[2] ?? {})) if (count < limits.maxNodes) node.children.set(k, walk(c));
      return node;
    };
    learner.#root = walk(data);
    learner.#nodes = count;
    return learner;
  }
}

function derive(nodes: PathNode[], prefix: string[], out: Set<string>): void {
  if (nodes.some((n) => n.ends > 0)) out.add(prefix.length > 1 ? prefix.join('/') : '/');
  const merged = new Map<string, PathNode[]>();
  const literalHits = new Map<string, number>();
  for (const node of nodes) {
    for (const [segment, child] of node.children) {
      merged.set(segment, [...(merged.get(segment) ?? []), child]);
      literalHits.set(segment, (literalHits.get(segment) ?? 0) + child.hits);
    }
  }
  // Values the baseline rules already recognise (numbers, UUIDs, dates, ...) are a parameter as
  // soon as two distinct ones share the position. A lone one that prefixes several endpoints (an
  // API date version such as "/2015-03-31/functions", "/2015-03-31/layers") stays a literal until
  // a second value shows up; a lone leaf ("/items/42") keeps the baseline placeholder.
  const byClass = new Map<string, string[]>();
  const words = new Map<string, number>();
  for (const [literal, hits] of literalHits) {
    const cls = literal === OVERFLOW ? OVERFLOW : templateSegment(literal);
    if (cls === literal) words.set(literal, hits);
    else byClass.set(cls, [...(byClass.get(cls) ?? []), literal]);
  }
  for (const [cls, literals] of byClass) {
    const prefixesSeveral = (literal: string): boolean => new Set(merged.get(literal)!.flatMap((n) => [...n.children.keys()])).size >= 2;
    if (literals.length === 1 && cls !== OVERFLOW && prefixesSeveral(literals[0]!)) {
      words.set(literals[0]!, literalHits.get(literals[0]!)!);
      byClass.delete(cls);
    }
  }
  const hot = hotLiterals(words);
  const values = [...words.keys()].filter((l) => !hot.has(l) && !VERSION.test(l));
  const valueHits = values.reduce((sum, l) => sum + words.get(l)!, 0);
  // A position where the baseline already found values is known to be a parameter: two rare
  // literals beside them are enough.
  const enough = byClass.size > 0 ? 2 : MIN_DISTINCT;
  const collapse = byClass.has(OVERFLOW) ||
    (values.length >= enough && (valueHits / values.length <= MAX_MEAN_HITS ||
      (values.length >= MANY_DISTINCT && values.filter((l) => words.get(l)! <= RARE_HITS).length >= values.length * MANY_RARE_SHARE)));
  const groups = new Map<string, PathNode[]>();
  const addTo = (name: string, literal: string): void => {
    groups.set(name, [...(groups.get(name) ?? []), ...merged.get(literal)!]);
  };
  if (collapse) {
    const name = parameterName(prefix);
    for (const literal of values) addTo(name, literal);
    for (const literals of byClass.values()) for (const literal of literals) addTo(name, literal);
    for (const literal of words.keys()) if (!values.includes(literal)) derive(merged.get(literal)!, [...prefix, literal], out);
  } else {
    for (const [cls, literals] of byClass) for (const literal of literals) addTo(cls, literal);
    for (const literal of words.keys()) derive(merged.get(literal)!, [...prefix, literal], out);
  }
  for (const [name, group] of groups) derive(group, [...prefix, name], out);
}

function parameterName(prefix: string[]): string {
  let base = 'param';
  for (let i = prefix.length - 1; i >= 0; i--) {
    const s = prefix[i]!;
    if (s && !isParameter(s) && !VERSION.test(s) && templateSegment(s) === s) {
      base = singular(s) || 'param';
      break;
    }
  }
  let name = `{${base}}`;
  for (let n = 2; prefix.includes(name) || BASELINE.has(name); n++) name = `{${base}${n}}`;
  return name;
}

interface MatcherNode {
  statics: Map<string, MatcherNode>;
  /** Parameter children: baseline placeholders match only their own kind, learned names match any segment. */
  params: [string, MatcherNode][];
  template?: string;
}

/**
 * Matches concrete paths against a template list. A segment "{name}" matches any one segment,
 * except a baseline placeholder ("{id}", "{uuid}", ...), which matches only segments the baseline
 * rules turn into that placeholder. Static segments beat parameters; the first full match wins.
 */
export class TemplateMatcher {
  readonly #root: MatcherNode = { statics: new Map(), params: [] };

  constructor(templates: readonly string[]) {
    for (const t of templates) {
      let node = this.#root;
      for (const segment of splitPath(t).slice(1)) {
        if (isParameter(segment)) {
          let entry = node.params.find(([s]) => s === segment);
          if (!entry) {
            entry = [segment, { statics: new Map(), params: [] }];
            node.params.push(entry);
            // Baseline placeholders first: they are the narrower match.
            node.params.sort(([a], [b]) => Number(!BASELINE.has(a)) - Number(!BASELINE.has(b)));
          }
          node = entry[1];
        } else {
          let next = node.statics.get(segment);
          if (!next) {
            next = { statics: new Map(), params: [] };
            node.statics.set(segment, next);
          }
          node = next;
        }
      }
      node.template ??= t;
    }
  }

  match(path: string): string | undefined {
    const segments = splitPath(path).slice(1);
    const walk = (node: MatcherNode, i: number): string | undefined => {
      if (i === segments.length) return node.template;
      const raw = segments[i]!;
      const stat = node.statics.get(raw);
      if (stat) {
        const found = walk(stat, i + 1);
        if (found) return found;
      }
      const base = templateSegment(raw);
      for (const [name, child] of node.params) {
        if (raw === '') continue;
        if (BASELINE.has(name) ? base !== name : false) continue;
        const found = walk(child, i + 1);
        if (found) return found;
      }
      return undefined;
    };
    return walk(this.#root, 0);
  }
}

/**
 * The learned template table the server pushes to the Wasm filter: per service (authority), the
 * exact list of templates, matched with TemplateMatcher's semantics (above). Only services where
 * learning went beyond the baseline rules are listed, and for those every template is listed, so
 * static siblings of a learned parameter ("/users/v1/login" beside "/users/v1/{user}") win over it
 * in the filter as they do here. Plain JSON.
 */
export interface LearnedTemplateTable {
  version: 1;
  services: Record<string, string[]>;
}

export const MAX_TABLE_TEMPLATES_PER_SERVICE = 2_000;

export function learnedTemplateTable(learners: ReadonlyMap<string, PathLearner>): LearnedTemplateTable {
  const services: Record<string, string[]> = {};
  for (const [service, learner] of [...learners].sort(([a], [b]) => a.localeCompare(b))) {
    const templates = learner.templates();
    const learned = templates.some((t) => splitPath(t).some((s) => isParameter(s) && !BASELINE.has(s)) || splitPath(t).some((s) => templateSegment(s) !== s));
    if (learned) services[service] = templates.slice(0, MAX_TABLE_TEMPLATES_PER_SERVICE);
  }
  return { version: 1, services };
}

/** One service's part of the table as the filter's `templates` entries (filter-config/schema.ts TemplateEntry). */
export function filterTemplateEntries(table: LearnedTemplateTable, service: string): { template: string }[] {
  return (table.services[service] ?? []).map((template) => ({ template }));
}
