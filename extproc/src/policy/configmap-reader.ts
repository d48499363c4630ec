// Reads one key of one ConfigMap (a policy's apiSpecs[].configMapRef) through the Kubernetes API.
// Only `get` on a named ConfigMap: no list or watch, so the RBAC rule can stay at `get` (and can be
// narrowed with resourceNames); the spec loader re-reads on its refresh interval instead of watching.
import * as k8s from '@kubernetes/client-node';

export interface ConfigMapText {
  text: string;
  /** The object's resourceVersion when read (for logs; changes are detected by content). */
  resourceVersion?: string;
}

export interface ConfigMapReader {
  /** The text under `key`; throws ConfigMapReadError when the ConfigMap or the key is not there. */
  read(namespace: string, name: string, key: string): Promise<ConfigMapText>;
}

export class ConfigMapReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigMapReadError';
  }
}

/** `data[key]`, or `binaryData[key]` decoded as UTF-8; a clear error naming the ConfigMap and key otherwise. */
export function configMapKeyText(cm: Pick<k8s.V1ConfigMap, 'data' | 'binaryData' | 'metadata'>, namespace: string, name: string, key: string): ConfigMapText {
  const rv = cm.metadata?.resourceVersion;
  const version = rv !== undefined ? { resourceVersion: rv } : {};
  const text = cm.data?.[key];
  if (text !== undefined) return { text, ...version };
  const binary = cm.binaryData?.[key];
  if (binary !== undefined) return { text: Buffer.from(binary, 'base64').toString('utf8'), ...version };
  const keys = [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})].sort();
  throw new ConfigMapReadError(`ConfigMap ${namespace}/${name} has no key "${key}" (${keys.length ? `it has: ${keys.join(', ')}` : 'it is empty'})`);
}

export function kubernetesConfigMapReader(kubeConfig: k8s.KubeConfig): ConfigMapReader {
  const api = kubeConfig.makeApiClient(k8s.CoreV1Api);
  return {
    async read(namespace, name, key) {
      let cm: k8s.V1ConfigMap;
      try {
        cm = await api.readNamespacedConfigMap({ namespace, name });
      } catch (err) {
        const code = (err as { code?: number }).code;
        const what = `ConfigMap ${namespace}/${name} (for key "${key}")`;
        if (code === 404) throw new ConfigMapReadError(`${what} not found`);
        if (code === 403) throw new ConfigMapReadError(`reading ${what} is forbidden: the server's ServiceAccount needs "get" on configmaps (Helm values specConfigMaps.enabled, specConfigMaps.names)`);
        throw new ConfigMapReadError(`cannot read ${what}: ${code ? `HTTP ${code}` : (err as Error).message}`);
      }
      return configMapKeyText(cm, namespace, name, key);
    },
  };
}
