// API2 broken authentication: JWT defects (alg none, unsigned, expired, not yet valid, unknown
// issuer, bad signature against a policy JWKS), unauthenticated calls to operations that are
// normally authenticated, one token presented from many workloads or addresses, and credential
// stuffing on login operations: bursts from one source, many login attempts packed in one request
// (GraphQL aliases or batches), and low-and-slow failures spread over many sources.
import type { LRUCache } from 'lru-cache';
import type { Detector } from '../detector.ts';
import { operationKey, type Exchange } from '../exchange.ts';
import type { Finding } from '../finding.ts';
import { findingFor, isSuccess, serviceLearned, type DetectorContext } from '../detector-context.ts';
import { boundedMap, WindowBaseline, WindowCount, WindowDistinct } from '../state.ts';
import { Jwks, sha256Hex, type JwksVerdict } from '../jwt.ts';
import { isFetchableJwksUri, remoteJwksFor, type RemoteJwks } from '../jwks-remote.ts';
import { graphqlLiteralArgs, graphqlOf, jsonOf, scalarFields } from '../body.ts';
import { learningFor, type AuthSettings, type LearningSettings } from '../policy-settings.ts';

export const BROKEN_AUTH_DETECTOR = 'broken-auth';

const LOGIN_FIELD = /^(login|log_in|signin|sign_in|authenticate|authenticateuser|tokenauth|obtaintoken|gettoken|createtoken|createsession)$/i;
const LOGIN_SEGMENT = /^(login|log-in|signin|sign-in|sign_in|authenticate|auth|token|tokens|session|sessions)$/i;
const USERNAME_KEY = /^(username|user_?name|user|login|email|e-mail|account|u)$/i;
const TOKEN_KEY = /(token|jwt|session)/i;
const JWT_SHAPE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$/;
const MAX_TRUSTED_SOURCES = 8;
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'x-api-key', 'api-key', 'apikey', 'x-auth-token', 'proxy-authorization'];

interface OperationAuth { total: number; authenticated: number }
interface SourceLogins { failures: WindowCount; usernames: WindowDistinct; flaggedUntil: number }
interface AccountTargeting { sources: WindowDistinct; trusted: Set<string> }
interface GlobalLogins { failures: WindowBaseline; flaggedUntil: number; reportedLevel: number }

/** Login attempts in a request: GraphQL login calls (aliases and batches add up), else 1 for a
 *  POST to a login-named path, else 0. */
export function loginAttempts(exchange: Exchange): number {
  const graphql = graphqlOf(exchange.request);
  if (graphql !== undefined) {
    let n = 0;
    for (const [name, count] of graphql.calls) if (LOGIN_FIELD.test(name)) n += count;
    return n;
  }
  if (exchange.request.method !== 'POST') return 0;
  const segments = exchange.template.split('/');
  if (!segments.some((s) => LOGIN_SEGMENT.test(s))) return 0;
  const body = jsonOf(exchange.request.body);
  return Array.isArray(body) ? Math.max(1, Math.min(body.length, 10_000)) : 1;
}

/** Successful logins in a response: token-looking values (token-named fields, JWT shapes) or a session cookie. */
export function loginSuccesses(exchange: Exchange): number {
  const response = exchange.response;
  if (response === undefined || !isSuccess(response.status)) return 0;
  let n = 0;
  for (const f of scalarFields(jsonOf(response.body), 256)) {
    if ((TOKEN_KEY.test(f.key) && f.value.length >= 16) || JWT_SHAPE.test(f.value)) n++;
  }
  // A token pair (access + refresh) is one login.
  const graphql = graphqlOf(exchange.request);
  if (graphql === undefined) n = Math.min(n, 1);
  else {
    const perLogin = [...graphql.calls].some(([k]) => LOGIN_FIELD.test(k)) ? Math.max(1, countTokenFieldsPerLogin(graphql.queries)) : 1;
    n = Math.ceil(n / perLogin);
  }
  if (n === 0 && response.headers.has('set-cookie')) n = 1;
  return n;
}

function countTokenFieldsPerLogin(queries: readonly string[]): number {
  const q = queries[0] ?? '';
  const m = /login[^{]*\{([^}]*)\}/i.exec(q);
  if (!m) return 1;
  return Math.max(1, (m[1]!.match(/\b\w*token\w*\b/gi) ?? []).length);
}

function usernamesTried(exchange: Exchange): string[] {
  const out: string[] = [];
  const graphql = graphqlOf(exchange.request);
  if (graphql !== undefined) {
    for (const [k, v] of graphqlLiteralArgs(graphql.queries)) if (USERNAME_KEY.test(k)) out.push(v);
    for (const vars of graphql.variables) for (const f of scalarFields(vars, 32)) if (USERNAME_KEY.test(f.key)) out.push(f.value);
  } else {
    for (const f of scalarFields(jsonOf(exchange.request.body), 64)) if (USERNAME_KEY.test(f.key)) out.push(f.value);
  }
  return out.slice(0, 1000);
}

function hasCredentials(exchange: Exchange): boolean {
  return CREDENTIAL_HEADERS.some((h) => exchange.request.headers.has(h));
}

export class BrokenAuthDetector implements Detector {
  readonly name = BROKEN_AUTH_DETECTOR;
  readonly #settings: AuthSettings;
  readonly #operations: LRUCache<string, OperationAuth>;
  readonly #tokens: LRUCache<string, WindowDistinct>;
  readonly #sources: LRUCache<string, SourceLogins>;
  readonly #global: LRUCache<string, GlobalLogins>;
  readonly #accounts: LRUCache<string, AccountTargeting>;
  /** Sources that have used a session token: people who log in, not address-rotating bots. */
  readonly #sessionSources: LRUCache<string, true>;
  readonly #verdicts: LRUCache<string, JwksVerdict>;
  readonly #jwks = new Map<string, Jwks>();
  /** Issuers whose JWKS policy gives by URL (an inline set for the issuer wins). */
  readonly #remoteJwks = new Map<string, RemoteJwks>();
  readonly #context: DetectorContext;
  readonly #learningPeriod: LearningSettings;

  constructor(context: DetectorContext) {
    const { settings, clock } = context;
    this.#settings = settings.auth;
    const caps = settings.caps;
    const window = settings.auth.windowMs;
    this.#operations = boundedMap(clock, { caps, ttlMs: 24 * 3600_000, persist: { registry: context.state, name: 'auth.operations' } });
    // Token reuse and per-source login windows are minutes long: not persisted (a restart restarts them).
    this.#tokens = boundedMap(clock, { caps, ttlMs: 2 * window, sizeOf: (k) => 1024 + k.length * 2 });
    this.#sources = boundedMap(clock, { caps, ttlMs: 2 * window, sizeOf: (k) => 2048 + k.length * 2 });
    this.#global = boundedMap(clock, { caps: { ...caps, maxEntries: Math.min(caps.maxEntries, 10_000) }, ttlMs: 24 * 3600_000, persist: { registry: context.state, name: 'auth.global-logins' } });
    this.#verdicts = boundedMap(clock, { caps, ttlMs: 3600_000 }); // a cache of JWKS checks: recomputed, not persisted
    this.#accounts = boundedMap(clock, { caps, ttlMs: 24 * 3600_000, sizeOf: (k) => 1536 + k.length * 2, persist: { registry: context.state, name: 'auth.accounts' } });
    this.#sessionSources = boundedMap(clock, { caps, ttlMs: 24 * 3600_000, persist: { registry: context.state, name: 'auth.session-sources' } });
    for (const [issuer, set] of Object.entries(settings.auth.jwks)) this.#jwks.set(issuer, new Jwks(set));
    for (const [issuer, uri] of Object.entries(settings.auth.jwksUris)) {
      // An unusable URI (policy validation reports it) leaves the issuer's signatures unjudged, never a failed build.
      if (!this.#jwks.has(issuer) && isFetchableJwksUri(uri)) this.#remoteJwks.set(issuer, remoteJwksFor(uri));
    }
    this.#context = context;
    this.#learningPeriod = learningFor(settings, 'auth');
  }

  #finding(exchange: Exchange, severity: Finding['severity'], summary: string, evidence: Record<string, unknown>, enforcement: Finding['enforcement'] = 'deny'): Finding {
    return findingFor(this.name, exchange, { category: 'API2:2023-BrokenAuthentication', severity, summary, evidence, enforcement });
  }

  onRequest(exchange: Exchange): Finding[] | undefined {
    const findings: Finding[] = [];
    const now = exchange.request.time;
    if (exchange.jwt?.wellFormed === true && exchange.source !== undefined) this.#sessionSources.set(exchange.source, true);
    this.#jwtChecks(exchange, now, findings);
    this.#unauthenticated(exchange, now, findings);
    const attempts = loginAttempts(exchange);
    if (attempts > 0) {
      const source = exchange.source ?? exchange.callerKey;
      if (attempts >= this.#settings.attemptsPerRequest) {
        findings.push(this.#finding(exchange, 'high', `${attempts} login attempts packed into one request (aliases or batch)`,
          { attempts, threshold: this.#settings.attemptsPerRequest, usernames: [...new Set(usernamesTried(exchange))].length }));
      }
      const s = this.#sources.get(source);
      if (s !== undefined && s.flaggedUntil > now) {
        findings.push(this.#finding(exchange, 'high', 'login attempt from a source flagged for credential stuffing',
          { source, flaggedUntil: s.flaggedUntil }, 'rate-limit'));
      } else {
        // Under a flow-wide failure surge, a source that already failed and now tries a username it
        // has not tried is stuffing; a user retrying their own username is not.
        const g = this.#global.get(operationKey(exchange));
        const fresh = usernamesTried(exchange).map((u) => sha256Hex(u, 16)).filter((h) => s === undefined || !s.usernames.has(h));
        if (g !== undefined && g.flaggedUntil > now && s !== undefined && s.failures.total(now) > 0 && fresh.length > 0) {
          findings.push(this.#finding(exchange, 'medium', 'new username tried by a source with failed logins while failures on this operation are far above baseline',
            { source, flaggedUntil: g.flaggedUntil }, 'rate-limit'));
        }
      }
    }
    return findings;
  }

  onResponse(exchange: Exchange): Finding[] | undefined {
    const attempts = loginAttempts(exchange);
    if (attempts === 0 || exchange.response === undefined) return undefined;
    const findings: Finding[] = [];
    const now = exchange.request.time;
    const failures = Math.max(0, attempts - loginSuccesses(exchange));
    const source = exchange.source ?? exchange.callerKey;
    let s = this.#sources.get(source);
    if (s === undefined) {
      s = { failures: new WindowCount(this.#settings.windowMs), usernames: new WindowDistinct(this.#settings.windowMs), flaggedUntil: 0 };
      this.#sources.set(source, s);
    }
    const before = s.failures.total(now);
    const failed = failures > 0 ? s.failures.add(now, failures) : before;
    const usernamesBefore = s.usernames.size(now);
    let usernames = usernamesBefore;
    const tried = usernamesTried(exchange).map((u) => sha256Hex(u, 16));
    for (const u of tried) usernames = s.usernames.add(u, now);
    if (attempts === 1 && tried.length === 1) {
      // One account failing from many sources: its password is being tried across a botnet. Sources
      // the account has logged in from, and sources that hold sessions, are people and do not count.
      const key = `${operationKey(exchange)}\u0000${tried[0]}`;
      let a = this.#accounts.get(key);
      if (a === undefined) { a = { sources: new WindowDistinct(this.#settings.windowMs, 64), trusted: new Set() }; this.#accounts.set(key, a); }
      if (failures === 0) {
        if (a.trusted.size < MAX_TRUSTED_SOURCES) a.trusted.add(source);
      } else if (!a.trusted.has(source) && !this.#sessionSources.has(source)) {
        const sources = a.sources.add(source, now);
        if (sources >= this.#settings.sourcesPerAccount) {
          findings.push(this.#finding(exchange, 'high', `one account failed to log in from ${sources} different sources in the window`,
            { usernameHash: tried[0], distinctSources: sources, threshold: this.#settings.sourcesPerAccount, windowMs: this.#settings.windowMs }, 'rate-limit'));
        }
      }
    }
    if (before < this.#settings.failedLoginsPerSource && failed >= this.#settings.failedLoginsPerSource) {
      s.flaggedUntil = now + this.#settings.windowMs;
      findings.push(this.#finding(exchange, 'high', `${failed} failed logins from one source in the window (credential stuffing or brute force)`,
        { source, failedLogins: failed, threshold: this.#settings.failedLoginsPerSource, windowMs: this.#settings.windowMs }, 'rate-limit'));
    } else if (usernamesBefore < this.#settings.usernamesPerSource && usernames >= this.#settings.usernamesPerSource && failures > 0) {
      s.flaggedUntil = now + this.#settings.windowMs;
      findings.push(this.#finding(exchange, 'high', `${usernames} different usernames tried from one source in the window`,
        { source, distinctUsernames: usernames, threshold: this.#settings.usernamesPerSource, windowMs: this.#settings.windowMs }, 'rate-limit'));
    }
    if (failures > 0) {
      const key = operationKey(exchange);
      let g = this.#global.get(key);
      if (g === undefined) { g = { failures: new WindowBaseline(this.#settings.windowMs), flaggedUntil: 0, reportedLevel: 0 }; this.#global.set(key, g); }
      const mean = g.failures.mean;
      const sd = g.failures.stddev;
      const current = g.failures.add(now, failures);
      const threshold = Math.max(this.#settings.failedLoginsGlobalFloor, this.#settings.failedLoginsGlobalFactor * mean + 3 * sd);
      if (current >= threshold) g.failures.excludeCurrentWindow();
      // Report each time the surge doubles past the threshold, so a second wave (another campaign)
      // inside an already flagged window is still reported.
      if (g.flaggedUntil <= now) g.reportedLevel = 0;
      const level = current < threshold ? 0 : 1 + Math.floor(Math.log2(current / threshold));
      if (level > g.reportedLevel) {
        g.reportedLevel = level;
        g.flaggedUntil = now + this.#settings.windowMs;
        findings.push(this.#finding(exchange, 'high', `${current} failed logins on this operation in the window across all sources (baseline ${mean.toFixed(1)})`,
          { failedLogins: current, baselineMean: mean, baselineStddev: sd, threshold, windowMs: this.#settings.windowMs }, 'rate-limit'));
      }
    }
    return findings;
  }

  #jwtChecks(exchange: Exchange, now: number, findings: Finding[]): void {
    const jwt = exchange.jwt;
    if (jwt === undefined) return;
    const skew = this.#settings.clockSkewMs;
    const base = { tokenHash: jwt.tokenHash };
    if (!jwt.wellFormed) {
      findings.push(this.#finding(exchange, 'medium', `malformed bearer token: ${jwt.problem}`, base));
      return;
    }
    if (jwt.alg === undefined || jwt.alg.toLowerCase() === 'none' || jwt.unsigned) {
      findings.push(this.#finding(exchange, 'critical', `unsigned JWT (alg ${jwt.alg ?? 'missing'})`, { ...base, alg: jwt.alg ?? null }));
    }
    if (jwt.exp !== undefined && jwt.exp * 1000 + skew < now) {
      findings.push(this.#finding(exchange, 'medium', 'expired JWT presented', { ...base, expiredForMs: now - jwt.exp * 1000, clockSkewMs: skew }));
    }
    if (jwt.nbf !== undefined && jwt.nbf * 1000 - skew > now) {
      findings.push(this.#finding(exchange, 'medium', 'JWT used before its nbf time', { ...base, validInMs: jwt.nbf * 1000 - now }));
    }
    if (this.#settings.trustedIssuers.length > 0 && (jwt.iss === undefined || !this.#settings.trustedIssuers.includes(jwt.iss))) {
      findings.push(this.#finding(exchange, 'high', 'JWT from an issuer policy does not trust', { ...base, iss: jwt.iss?.slice(0, 256) ?? null }));
    }
    const remote = jwt.iss !== undefined && !this.#jwks.has(jwt.iss) ? this.#remoteJwks.get(jwt.iss) : undefined;
    const jwks = (jwt.iss !== undefined ? this.#jwks.get(jwt.iss) : undefined) ?? remote?.current() ?? (remote === undefined ? this.#jwks.get('*') : undefined);
    if (jwks !== undefined) {
      // A fetched set changes on refresh: its verdicts are cached per version.
      const verdictKey = remote === undefined ? jwt.tokenHash : `${jwt.tokenHash}\u0000${remote.version}`;
      let verdict = this.#verdicts.get(verdictKey);
      if (verdict === undefined) { verdict = jwks.verify(jwt); this.#verdicts.set(verdictKey, verdict); }
      if (verdict === 'no-key') remote?.unknownKey();
      if (verdict !== 'valid') findings.push(this.#finding(exchange, 'critical', `JWT signature does not verify against the policy JWKS (${verdict})`, { ...base, verdict, alg: jwt.alg ?? null, ...(remote ? { jwksUri: remote.uri } : {}) }));
    }
    const source = `${exchange.request.caller.workload ?? '-'}|${exchange.source ?? '-'}`;
    let sources = this.#tokens.get(jwt.tokenHash);
    if (sources === undefined) { sources = new WindowDistinct(this.#settings.windowMs, this.#settings.sourcesPerToken * 4); this.#tokens.set(jwt.tokenHash, sources); }
    const before = sources.size(now);
    const count = sources.add(source, now);
    if (count >= this.#settings.sourcesPerToken && count > before) {
      findings.push(this.#finding(exchange, 'high', `one token presented from ${count} different workloads or addresses`,
        { ...base, distinctSources: count, threshold: this.#settings.sourcesPerToken, windowMs: this.#settings.windowMs }));
    }
  }

  #unauthenticated(exchange: Exchange, now: number, findings: Finding[]): void {
    const learned = serviceLearned(exchange, this.#context, this.#learningPeriod);
    const key = operationKey(exchange);
    let op = this.#operations.get(key);
    if (op === undefined) { op = { total: 0, authenticated: 0 }; this.#operations.set(key, op); }
    const authed = hasCredentials(exchange);
    if (!authed && learned && op.total >= 20 && op.authenticated / op.total >= this.#settings.authenticatedShare) {
      findings.push(this.#finding(exchange, 'medium', 'unauthenticated call to an operation that is normally authenticated',
        { authenticatedShare: op.authenticated / op.total, observed: op.total, threshold: this.#settings.authenticatedShare }));
    }
    op.total++;
    if (authed) op.authenticated++;
  }
}
