// The filter's configuration: plugin configuration (JSON) at start, then the same document's tables
// refreshed from the meshward server. Validation is strict (unknown keys, wrong types and out-of-range
// values are refused with a reason) and mirrors extproc/src/filter-config/schema.ts; a refused
// document never replaces the configuration in force.
import * as json from "./json";
import { fnv1a64 } from "./bytes";
import { TemplateTable, makeEntry } from "./template";

export const ROLE_INBOUND: i32 = 0;
export const ROLE_OUTBOUND: i32 = 1;

const MAX_ENTRIES = 10000;
const MAX_STRING = 2048;

export class LimitRule {
  ratePerSecond: f64 = 0;
  burst: f64 = 0;
  /** Names this bucket (role, identity x operation) in the bounded shared-data slots (index.ts). */
  keyHash: u64 = 0;
}

/** A temporary deny the server added after enforcing a finding: refused locally with the same
 *  status and reason until it expires (the filter checks the expiry itself, so an entry ends even
 *  when the server cannot be reached). */
export class EnforcedEntry {
  status: u32 = 403;
  expiresAtNanos: i64 = 0;
  /** Response body, built once when the table is parsed. */
  body: ArrayBuffer = new ArrayBuffer(0);
}

export class RefreshSettings {
  cluster: string = "";
  path: string = "";
  authority: string = "";
  token: string = "";
  intervalMs: u32 = 0;
  timeoutMs: u32 = 2000;
}

export class FilterConfig {
  // Local settings: plugin configuration only (a refreshed document cannot redirect them).
  role: i32 = ROLE_INBOUND;
  self: string = "";
  /** Trust domain for the own SPIFFE ID built from node metadata (outbound). */
  trustDomain: string = "cluster.local";
  refresh: RefreshSettings | null = null;
  // Tables: from plugin configuration, replaced by each valid refresh.
  version: string = "";
  denyIdentities: Set<string> = new Set<string>();
  denyPairs: Set<string> = new Set<string>();
  limits: Map<string, LimitRule> = new Map<string, LimitRule>();
  templates: TemplateTable = new TemplateTable();
  samplePercentBasisPoints: u32 = 0;
  seed: ArrayBuffer = new ArrayBuffer(0);
  /** Sample by a keyed hash of x-request-id (same answer on every hop) instead of a private draw. */
  consistentSampling: bool = false;
  alwaysOperations: Set<string> = new Set<string>();
  suspectIdentities: Set<string> = new Set<string>();
  /** Enforced entries for a whole caller, and per caller x operation (pairKey). */
  enforcedIdentities: Map<string, EnforcedEntry> = new Map<string, EnforcedEntry>();
  enforcedPairs: Map<string, EnforcedEntry> = new Map<string, EnforcedEntry>();

  hasEnforcement(): bool {
    return this.denyIdentities.size > 0 || this.denyPairs.size > 0 || this.limits.size > 0 ||
      this.enforcedIdentities.size > 0 || this.enforcedPairs.size > 0;
  }
  /** True when some table is keyed by caller identity (so the request's identity must be built). */
  needsIdentity(): bool { return this.hasEnforcement() || this.suspectIdentities.size > 0; }
}

/** Key of an identity x operation pair in the tables. */
export function pairKey(identity: string, operation: string): string { return identity + "\n" + operation; }

export let configError: string = "";

function bad(reason: string): FilterConfig | null {
  if (configError.length == 0) configError = reason;
  return null;
}

function kindName(k: json.Kind): string {
  if (k == json.Kind.Null) return "null";
  if (k == json.Kind.Bool) return "boolean";
  if (k == json.Kind.Number) return "number";
  if (k == json.Kind.String) return "string";
  if (k == json.Kind.Array) return "array";
  return "object";
}

/** Null (with configError) unless every key of `obj` is in `allowed`. */
function checkKeys(obj: json.JValue, allowed: string[], where: string): bool {
  const keys = obj.keys!;
  for (let i = 0; i < keys.length; i++) {
    if (!allowed.includes(keys[i])) { bad(where + ": unknown key \"" + keys[i] + "\""); return false; }
  }
  return true;
}

function expect(v: json.JValue | null, kind: json.Kind, where: string): bool {
  if (v === null) { bad(where + ": required"); return false; }
  if (v.kind != kind) { bad(where + ": must be " + kindName(kind) + ", got " + kindName(v.kind)); return false; }
  return true;
}

function stringAt(v: json.JValue | null, where: string, required: bool): string | null {
  if (v === null && !required) return "";
  if (!expect(v, json.Kind.String, where)) return null;
  const s = v!.str;
  if (s.length > MAX_STRING) { bad(where + ": longer than " + MAX_STRING.toString() + " characters"); return null; }
  if (required && s.length == 0) { bad(where + ": must not be empty"); return null; }
  return s;
}

function numberAt(v: json.JValue | null, where: string, min: f64, max: f64): f64 {
  if (!expect(v, json.Kind.Number, where)) return NaN;
  const n = v!.num;
  if (!(n >= min && n <= max)) { bad(where + ": must be between " + min.toString() + " and " + max.toString()); return NaN; }
  return n;
}

function listAt(v: json.JValue | null, where: string): json.JValue[] | null {
  if (v === null) return [];
  if (!expect(v, json.Kind.Array, where)) return null;
  const items = v.items!;
  if (items.length > MAX_ENTRIES) { bad(where + ": more than " + MAX_ENTRIES.toString() + " entries"); return null; }
  return items;
}

function stringSet(v: json.JValue | null, where: string, into: Set<string>): bool {
  const items = listAt(v, where);
  if (items === null) return false;
  for (let i = 0; i < items.length; i++) {
    const s = stringAt(items[i], where + "[" + i.toString() + "]", true);
    if (s === null) return false;
    into.add(s);
  }
  return true;
}

function pairs(v: json.JValue | null, where: string, into: Set<string>): bool {
  const items = listAt(v, where);
  if (items === null) return false;
  for (let i = 0; i < items.length; i++) {
    const w = where + "[" + i.toString() + "]";
    const it = items[i];
    if (!expect(it, json.Kind.Object, w) || !checkKeys(it, ["identity", "operation"], w)) return false;
    const id = stringAt(it.get("identity"), w + ".identity", true);
    const op = stringAt(it.get("operation"), w + ".operation", true);
    if (id === null || op === null) return false;
    into.add(pairKey(id, op));
  }
  return true;
}

function parseTables(doc: json.JValue, c: FilterConfig): bool {
  const version = stringAt(doc.get("version"), "version", false);
  if (version === null) return false;
  c.version = version;

  const deny = doc.get("deny");
  if (deny !== null) {
    if (!expect(deny, json.Kind.Object, "deny") || !checkKeys(deny, ["identities", "operations"], "deny")) return false;
    if (!stringSet(deny.get("identities"), "deny.identities", c.denyIdentities)) return false;
    if (!pairs(deny.get("operations"), "deny.operations", c.denyPairs)) return false;
  }

  const limits = listAt(doc.get("limits"), "limits");
  if (limits === null) return false;
  for (let i = 0; i < limits.length; i++) {
    const w = "limits[" + i.toString() + "]";
    const it = limits[i];
    if (!expect(it, json.Kind.Object, w) || !checkKeys(it, ["identity", "operation", "ratePerSecond", "burst"], w)) return false;
    const id = stringAt(it.get("identity"), w + ".identity", true);
    const op = stringAt(it.get("operation"), w + ".operation", true);
    if (id === null || op === null) return false;
    const rule = new LimitRule();
    rule.ratePerSecond = numberAt(it.get("ratePerSecond"), w + ".ratePerSecond", 0.001, 1e6);
    rule.burst = numberAt(it.get("burst"), w + ".burst", 1, 1e6);
    if (isNaN(rule.ratePerSecond) || isNaN(rule.burst)) return false;
    const key = pairKey(id, op);
    const named = String.UTF8.encode((c.role == ROLE_OUTBOUND ? "out\n" : "in\n") + key);
    rule.keyHash = fnv1a64(changetype<usize>(named), <usize>named.byteLength);
    c.limits.set(key, rule);
  }

  if (!parseEnforced(doc.get("enforced"), c)) return false;

  const templates = listAt(doc.get("templates"), "templates");
  if (templates === null) return false;
  for (let i = 0; i < templates.length; i++) {
    const w = "templates[" + i.toString() + "]";
    const it = templates[i];
    if (!expect(it, json.Kind.Object, w) || !checkKeys(it, ["method", "template"], w)) return false;
    const method = stringAt(it.get("method"), w + ".method", false);
    const template = stringAt(it.get("template"), w + ".template", true);
    if (method === null || template === null) return false;
    if (template.charCodeAt(0) != 0x2f) { bad(w + ".template: must start with /"); return false; }
    c.templates.add(makeEntry(method, template));
  }

  const sampling = doc.get("sampling");
  if (sampling !== null) {
    if (!expect(sampling, json.Kind.Object, "sampling") ||
      !checkKeys(sampling, ["percent", "seed", "consistent", "alwaysOperations", "suspectIdentities"], "sampling")) return false;
    const pct = sampling.get("percent");
    if (pct !== null) {
      const p = numberAt(pct, "sampling.percent", 0, 100);
      if (isNaN(p)) return false;
      c.samplePercentBasisPoints = <u32>Math.round(p * 100);
    }
    const seed = stringAt(sampling.get("seed"), "sampling.seed", false);
    if (seed === null) return false;
    c.seed = String.UTF8.encode(seed);
    const consistent = sampling.get("consistent");
    if (consistent !== null) {
      if (!expect(consistent, json.Kind.Bool, "sampling.consistent")) return false;
      c.consistentSampling = consistent.bool;
    }
    if (!stringSet(sampling.get("alwaysOperations"), "sampling.alwaysOperations", c.alwaysOperations)) return false;
    if (!stringSet(sampling.get("suspectIdentities"), "sampling.suspectIdentities", c.suspectIdentities)) return false;
  }
  return true;
}

/** JSON string literal for a response body (the reason and rule are validated plain text). */
function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch == 0x22 || ch == 0x5c) out += "\\" + String.fromCharCode(ch);
    else if (ch < 0x20) out += " ";
    else out += String.fromCharCode(ch);
  }
  return out + "\"";
}

function parseEnforced(v: json.JValue | null, c: FilterConfig): bool {
  const items = listAt(v, "enforced");
  if (items === null) return false;
  for (let i = 0; i < items.length; i++) {
    const w = "enforced[" + i.toString() + "]";
    const it = items[i];
    if (!expect(it, json.Kind.Object, w) ||
      !checkKeys(it, ["identity", "operation", "status", "reason", "rule", "expiresAtMs"], w)) return false;
    const id = stringAt(it.get("identity"), w + ".identity", true);
    // Absent: the whole caller; present: a non-empty operation id (as the server's schema says).
    const opValue = it.get("operation");
    const op = opValue === null ? "" : stringAt(opValue, w + ".operation", true);
    const reason = stringAt(it.get("reason"), w + ".reason", true);
    const rule = stringAt(it.get("rule"), w + ".rule", false);
    if (id === null || op === null || reason === null || rule === null) return false;
    const status = numberAt(it.get("status"), w + ".status", 403, 429);
    const expires = numberAt(it.get("expiresAtMs"), w + ".expiresAtMs", 0, 1e14);
    if (isNaN(status) || isNaN(expires)) return false;
    if (status != 403 && status != 429) { bad(w + ".status: must be 403 or 429"); return false; }
    const e = new EnforcedEntry();
    e.status = <u32>status;
    e.expiresAtNanos = <i64>expires * 1000000;
    e.body = String.UTF8.encode("{\"error\":" + (e.status == 429 ? "\"too_many_requests\"" : "\"forbidden\"") +
      ",\"reason\":" + jsonString(reason) + (rule.length > 0 ? ",\"rule\":" + jsonString(rule) : "") + "}");
    if (op.length > 0) c.enforcedPairs.set(pairKey(id, op), e);
    else c.enforcedIdentities.set(id, e);
  }
  return true;
}

const TABLE_KEYS = ["version", "deny", "limits", "templates", "sampling", "enforced"];
const PLUGIN_KEYS = ["version", "deny", "limits", "templates", "sampling", "enforced", "role", "self", "trustDomain", "refresh"];

function parseRefresh(v: json.JValue, c: FilterConfig): bool {
  if (!expect(v, json.Kind.Object, "refresh") ||
    !checkKeys(v, ["cluster", "path", "authority", "token", "intervalMs", "timeoutMs"], "refresh")) return false;
  const r = new RefreshSettings();
  const cluster = stringAt(v.get("cluster"), "refresh.cluster", true);
  const path = stringAt(v.get("path"), "refresh.path", true);
  const authority = stringAt(v.get("authority"), "refresh.authority", false);
  const token = stringAt(v.get("token"), "refresh.token", false);
  if (cluster === null || path === null || authority === null || token === null) return false;
  if (path.charCodeAt(0) != 0x2f) { bad("refresh.path: must start with /"); return false; }
  const interval = numberAt(v.get("intervalMs"), "refresh.intervalMs", 100, 86400000);
  if (isNaN(interval)) return false;
  const timeout = v.get("timeoutMs");
  if (timeout !== null) {
    const t = numberAt(timeout, "refresh.timeoutMs", 10, 60000);
    if (isNaN(t)) return false;
    r.timeoutMs = <u32>t;
  }
  r.cluster = cluster;
  r.path = path;
  r.authority = authority.length > 0 ? authority : "meshward";
  r.token = token;
  r.intervalMs = <u32>interval;
  c.refresh = r;
  return true;
}

/**
 * Parses a configuration document. `plugin` is true for the plugin configuration (may also carry
 * role, self, refresh); false for a refreshed document, whose local settings come from `base`.
 */
export function parseConfig(ptr: usize, len: usize, plugin: bool, base: FilterConfig | null): FilterConfig | null {
  configError = "";
  if (len == 0 && plugin) return new FilterConfig(); // no configuration: capture only
  const doc = json.parse(ptr, len);
  if (doc === null) return bad("not valid JSON: " + json.lastError);
  if (doc.kind != json.Kind.Object) return bad("document must be a JSON object");
  if (!checkKeys(doc, plugin ? PLUGIN_KEYS : TABLE_KEYS, "configuration")) return null;
  const c = new FilterConfig();
  if (plugin) {
    const role = doc.get("role");
    if (role !== null) {
      const r = stringAt(role, "role", true);
      if (r === null) return null;
      if (r == "inbound") c.role = ROLE_INBOUND;
      else if (r == "outbound") c.role = ROLE_OUTBOUND;
      else return bad("role: must be \"inbound\" or \"outbound\"");
    }
    const self = stringAt(doc.get("self"), "self", false);
    if (self === null) return null;
    c.self = self;
    const trustDomain = stringAt(doc.get("trustDomain"), "trustDomain", false);
    if (trustDomain === null) return null;
    if (trustDomain.length > 0) c.trustDomain = trustDomain;
    const refresh = doc.get("refresh");
    if (refresh !== null && !parseRefresh(refresh, c)) return null;
  } else if (base !== null) {
    c.role = base.role;
    c.self = base.self;
    c.trustDomain = base.trustDomain;
    c.refresh = base.refresh;
  }
  if (!parseTables(doc, c)) return null;
  return c;
}
