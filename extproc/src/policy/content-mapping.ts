// spec.content -> the content detectors' settings (inspect/settings.ts ContentSettingsInput). Only
// what the policy says is set, so the server's defaults (for example `serve --redact`) stay in force
// for the rest.
import type { ContentSettingsInput } from '../inspect/settings.ts';
import { operationPattern } from './operation-pattern.ts';
import { methodsFromBase64DescriptorSet } from '../inspect/grpc.ts';
import type { ConfigMapKeyRef, ContentPolicy } from './types.ts';

/** The methods of a ConfigMap's descriptor set (in the namespace of the policy that names it) as the
 *  server last read them; undefined when it is not read, not readable or not a descriptor set. */
export type ConfigMapDescriptorMethods = (ref: ConfigMapKeyRef) => readonly string[] | undefined;

/** Host names compare as the detectors see them (authorityHost: lower case, no port). */
export const hostName = (h: string): string => h.toLowerCase();

export function contentSettingsFor(content: ContentPolicy, configMapMethods?: ConfigMapDescriptorMethods): ContentSettingsInput {
  const out: ContentSettingsInput = {};
  const { contracts, exposure, ssrf, graphql, grpc, websocket, thirdPartyHosts } = content;
  if (contracts) {
    out.contract = {
      ...(contracts.mode !== undefined ? { default: contracts.mode } : {}),
      ...(contracts.operations ? { patterns: contracts.operations.map((o) => ({ operation: operationPattern(o.operation), mode: o.mode })) } : {}),
    };
  }
  if (exposure) out.exposure = { ...exposure };
  if (ssrf) {
    out.ssrf = {
      ...(ssrf.allowedHosts ? { allowedHosts: ssrf.allowedHosts.map(hostName) } : {}),
      ...(ssrf.openRedirectors ? { openRedirectors: ssrf.openRedirectors.map((r) => ({ ...r, host: hostName(r.host) })) } : {}),
    };
  }
  if (graphql) out.graphql = { ...graphql };
  // The gRPC detector compares request paths "/package.Service/Method": the listed methods and those
  // the descriptor set declares (an inline one was validated when the policy was loaded, so it parses
  // here). A ConfigMap's that is not read (yet) adds none: the check runs on knownMethods alone.
  if (grpc) {
    const { descriptorSet, knownMethods, ...rest } = grpc;
    const declared = descriptorSet?.base64 !== undefined ? methodsFromBase64DescriptorSet(descriptorSet.base64)
      : descriptorSet?.configMapRef ? configMapMethods?.(descriptorSet.configMapRef) : undefined;
    const known = [...(knownMethods ?? []).map((m) => `/${m}`), ...(declared ?? [])];
    out.grpc = { ...rest, ...(knownMethods || declared ? { knownMethods: [...new Set(known)] } : {}) };
  }
  if (websocket) out.websocket = { ...websocket };
  if (thirdPartyHosts) out.thirdPartyHosts = thirdPartyHosts.map(hostName);
  if (content.overload) out.overload = content.overload;
  return out;
}
