// Settings of the content-inspection detectors (policy, issue #7, fills them; these are defaults),
// and what those detectors share: one body decoder, one contract validator, the spec resolver.
import type { Exchange } from '../engine/exchange.ts';
import { BodyDecoder } from './body.ts';
import { ContractValidator, type OpenApiOperation } from './contract.ts';
import type { GraphQLSchema } from 'graphql';
import { DEFAULT_GRAPHQL_LIMITS, type GraphqlLimits } from './graphql.ts';
import { DEFAULT_BODY_LIMITS, type BodyLimits } from './limits.ts';
import type { OpenRedirector } from './ssrf.ts';
import type { SensitiveKind } from './sensitive.ts';

export type ContractMode = 'enforce' | 'monitor';

export interface ContentSettings {
  body: BodyLimits;
  /** Request contract mode per operation id ("METHOD host template"); `default` for the rest.
   *  Without a spec, an operation's learned shape is judged after `learnedMinSamples` consistent requests. */
  contract: {
    default: ContractMode; operations: Record<string, ContractMode>;
    /** Modes from policy by regular expression on the operation id (after `operations`, first match). */
    patterns?: { operation: string; mode: ContractMode }[];
    learnedMinSamples: number;
  };
  exposure: {
    /** Kinds reported whenever a response carries them (no learning needed). */
    alwaysReport: SensitiveKind[];
    /** Responses a caller must have received from an operation before a new sensitive field is "sudden". */
    callerWarmup: number;
    /** Responses an operation must have sent (to anyone) before a sensitive field new to it is reported. */
    operationWarmup: number;
    /** A sensitive field the operation has given to this many identities is ordinary for it. */
    commonAmongCallers: number;
    /** Kinds whose values enforce mode replaces with "[redacted]" in JSON responses (default none:
     *  redaction is opt-in, `meshward serve --redact`). */
    redact: SensitiveKind[];
  };
  ssrf: { openRedirectors: OpenRedirector[]; allowedHosts: string[] };
  graphql: GraphqlLimits;
  /** GraphQL schemas (from policy, e.g. schemaFromIntrospection) per service host; absent host = any. */
  graphqlSchemas: { authority?: string; schema: GraphQLSchema }[];
  grpc: { knownMethods: string[]; allowReflection: boolean };
  websocket: { requireCredentials: boolean; upgradesPerMinute: number };
  /** Hosts of third-party APIs whose responses are checked before the app consumes them (outbound). */
  thirdPartyHosts: string[];
  /** A request body the decode pool could not inspect (queue full, deadline, worker failure):
   *  `open` decides it on its headers; `closed` refuses it in enforce mode. */
  overload: 'open' | 'closed';
}

export function defaultContentSettings(): ContentSettings {
  return {
    body: { ...DEFAULT_BODY_LIMITS },
    contract: { default: 'enforce', operations: {}, patterns: [], learnedMinSamples: 5 },
    exposure: { alwaysReport: ['private-key', 'cloud-key', 'password-hash', 'card-number'], callerWarmup: 10, operationWarmup: 20, commonAmongCallers: 3, redact: [] },
    ssrf: { openRedirectors: [], allowedHosts: [] },
    graphql: { ...DEFAULT_GRAPHQL_LIMITS },
    graphqlSchemas: [],
    grpc: { knownMethods: [], allowReflection: false },
    websocket: { requireCredentials: true, upgradesPerMinute: 30 },
    thirdPartyHosts: [],
    overload: 'open',
  };
}

/** What a policy may set of ContentSettings (plain data; each group merges over the server's). */
export interface ContentSettingsInput {
  contract?: Partial<ContentSettings['contract']>;
  exposure?: Partial<ContentSettings['exposure']>;
  ssrf?: Partial<ContentSettings['ssrf']>;
  graphql?: Partial<GraphqlLimits>;
  grpc?: Partial<ContentSettings['grpc']>;
  websocket?: Partial<ContentSettings['websocket']>;
  thirdPartyHosts?: string[];
  overload?: ContentSettings['overload'];
}

export function mergeContentSettings(base: ContentSettings, input: ContentSettingsInput): ContentSettings {
  return {
    ...base,
    contract: { ...base.contract, ...input.contract },
    exposure: { ...base.exposure, ...input.exposure },
    ssrf: { ...base.ssrf, ...input.ssrf },
    graphql: { ...base.graphql, ...input.graphql },
    grpc: { ...base.grpc, ...input.grpc },
    websocket: { ...base.websocket, ...input.websocket },
    thirdPartyHosts: input.thirdPartyHosts ?? base.thirdPartyHosts,
    overload: input.overload ?? base.overload,
  };
}

/** `shared` with a policy's settings over its own; decoder, validator and spec resolver stay shared. */
export function withContentSettings(shared: ContentContext, input: ContentSettingsInput | undefined): ContentContext {
  if (input === undefined || Object.keys(input).length === 0) return shared;
  return { ...shared, settings: mergeContentSettings(shared.settings, input) };
}

/** The spec operation an exchange is, with its path parameters; undefined when no spec declares it. */
export type OperationResolver = (exchange: Exchange) => { operation: OpenApiOperation; pathParams: Record<string, string> } | undefined;

/** What every content detector is built with. */
export interface ContentContext {
  settings: ContentSettings;
  decoder: BodyDecoder;
  contracts: ContractValidator;
  resolveOperation: OperationResolver;
}

export function createContentContext(settings: Partial<ContentSettings> = {}, resolveOperation: OperationResolver = () => undefined): ContentContext {
  const merged = { ...defaultContentSettings(), ...settings };
  return { settings: merged, decoder: new BodyDecoder(merged.body), contracts: new ContractValidator(), resolveOperation };
}
