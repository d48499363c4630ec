// Reads one key of one ConfigMap (a policy's apiSpecs[].configMapRef as text,
// content.grpc.descriptorSet.configMapRef as bytes) through the Kubernetes API.
// Only `get` on a named ConfigMap: no list or watch, so the RBAC rule can stay at `get` (and can be
// narrowed with resourceNames); the spec loader re-reads on its refresh interval instead of watching.
import * as k8s from '@kubernetes/client-node';

export interface ConfigMapText {
  text: string;
  /** The object's resourceVersion when read (for logs; changes are detected by content). */
  resourceVersion?: string;
}

export interface ConfigMapBytes {
  bytes: Buffer;
  resourceVersion?: string;
}

export interface ConfigMapReader {
  /** The text under `key`; throws ConfigMapReadError when the ConfigMap or the key is not there. */
  read(namespace: string, name: string, key: string): Promise<ConfigMapText>;
  /** The bytes under `key` (configMapKeyBytes); throws ConfigMapReadError like `read`. */
  readBytes(namespace: string, name: string, key: string): Promise<ConfigMapBytes>;
}

type ConfigMapContent = Pick<k8s.V1ConfigMap, 'data' | 'binaryData' | 'metadata'>;

export class ConfigMapReadError extends Error {
  /** The API server answered and the content is not there (not found, no such key, forbidden):
   *  not worth waiting out. False for transient failures (network, 5xx, timeouts). */
  readonly definitive: boolean;
  constructor(message: string, definitive = true) {
    super(message);
    this.name = 'ConfigMapReadError';
    this.definitive = definitive;
  }
}

/** `data[key]`, or `binaryData[key]` decoded as UTF-8; a clear error naming the ConfigMap and key otherwise. */
export function configMapKeyText(cm: ConfigMapContent, namespace: string, name: string, key: string): ConfigMapText {
  const text = cm.data?.[key];
  if (text !== undefined) return { text, ...versionOf(cm) };
  const binary = cm.binaryData?.[key];
  if (binary !== undefined) return { text: Buffer.from(binary, 'base64').toString('utf8'), ...versionOf(cm) };
  throw missingKey(cm, namespace, name, key);
}

/** `binaryData[key]` decoded from base64, or the UTF-8 bytes of `data[key]`: `kubectl create
 *  configmap --from-file` puts a file in `data` when its bytes happen to be valid UTF-8 (a small
 *  descriptor set can be), so those bytes are the file's own. Never decoded as text. */
export function configMapKeyBytes(cm: ConfigMapContent, namespace: string, name: string, key: string): ConfigMapBytes {
  const binary = cm.binaryData?.[key];
  if (binary !== undefined) return { bytes: Buffer.from(binary, 'base64'), ...versionOf(cm) };
  const text = cm.data?.[key];
  if (text !== undefined) return { bytes: Buffer.from(text, 'utf8'), ...versionOf(cm) };
  throw missingKey(cm, namespace, name, key);
}

function versionOf(cm: ConfigMapContent): { resourceVersion?: string } {
  const rv = cm.metadata?.resourceVersion;
  return rv !== undefined ? { resourceVersion: rv } : {};
}

function missingKey(cm: ConfigMapContent, namespace: string, name: string, key: string): ConfigMapReadError {
  const keys = [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})].sort();
  return new ConfigMapReadError(`ConfigMap ${namespace}/${name} has no key "${key}" (${keys.length ? `it has: ${keys.join(', ')}` : 'it is empty'})`);
}

export function kubernetesConfigMapReader(kubeConfig: k8s.KubeConfig): ConfigMapReader {
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const get = async (namespace: string, name: string, key: string): Promise<k8s.V1ConfigMap> => {
    try {
      return await api.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      const code = (err as { code?: number }).code;
      const what = `ConfigMap ${namespace}/${name} (for key "${key}")`;
      if (code === 404) throw new ConfigMapReadError(`${what} not found`);
      if (code === 403) throw new ConfigMapReadError(`reading ${what} is forbidden: the server's ServiceAccount needs "get" on configmaps (Helm values specConfigMaps.enabled, specConfigMaps.names)`);
      throw new ConfigMapReadError(`cannot read ${what}: ${code ? `HTTP ${code}` : (err as Error).message}`, code !== undefined && code >= 400 && code < 500 && code !== 408 && code !== 429);
    }
  };
  return {
    read: async (namespace, name, key) => configMapKeyText(await get(namespace, name, key), namespace, name, key),
    readBytes: async (namespace, name, key) => configMapKeyBytes(await get(namespace, name, key), namespace, name, key),
  };
}
