// mTLS for the ext_proc port: only sidecars holding a certificate from the mesh CA may open streams,
// and each stream knows the SPIFFE identity of the sidecar that opened it. Certificates rotate (Istio:
// every 24 h), so they are read by grpc-js's file watcher and a rotation needs no restart.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

export interface ServerTlsOptions {
  /** PEM certificate chain the server presents (its SPIFFE identity). */
  certFile: string;
  keyFile: string;
  /** PEM CA bundle client certificates must chain to (the mesh root). */
  clientCaFile: string;
  /** How often the files are re-read (ms); default 60 s. */
  refreshIntervalMs?: number;
}

export const DEFAULT_TLS_REFRESH_MS = 60_000;

/** SPIFFE identity of a workload certificate: spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT. */
export interface WorkloadIdentity {
  spiffeId: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** Who opened a stream: nobody known on a plaintext port; on the mTLS port, the client certificate's
 *  workload identity (absent when it carries no single SPIFFE workload ID). */
export type StreamPeer =
  | { transport: 'plaintext' }
  | { transport: 'mtls'; identity?: WorkloadIdentity; uriSans: readonly string[] };

const SPIFFE_WORKLOAD = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

export function parseWorkloadIdentity(uri: string): WorkloadIdentity | undefined {
  const m = SPIFFE_WORKLOAD.exec(uri);
  return m ? { spiffeId: uri, trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! } : undefined;
}

/** URI SANs from Node's `subjectaltname` text ("URI:a, DNS:b"; values with a comma come quoted and
 *  are skipped: a SPIFFE ID holds none). */
export function uriSansOf(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  return subjectAltName.split(', ').filter((e) => e.startsWith('URI:')).map((e) => e.slice(4));
}

/** The SPIFFE identity a certificate carries: SPIFFE allows exactly one URI SAN; anything else is no identity. */
export function peerFromSubjectAltName(subjectAltName: string | undefined): StreamPeer {
  const uriSans = uriSansOf(subjectAltName);
  const identity = uriSans.length === 1 ? parseWorkloadIdentity(uriSans[0]!) : undefined;
  return identity ? { transport: 'mtls', identity, uriSans } : { transport: 'mtls', uriSans };
}

/** The peer of one gRPC call, from the TLS session grpc-js kept for it. */
export function streamPeerOf(call: { getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate } }): StreamPeer {
  const auth = call.getAuthContext();
  if (auth.transportSecurityType !== 'ssl') return { transport: 'plaintext' };
  return peerFromSubjectAltName(auth.sslPeerCertificate?.subjectaltname);
}

function readPem(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`meshward: TLS ${what} ${file}: cannot read: ${(err as Error).message}`);
  }
}

/** Throws a clear error when a file is unreadable, not PEM, or the key does not fit the certificate
 *  (the watcher would only log it and refuse every handshake). */
export function checkTlsFiles(o: ServerTlsOptions): void {
  const cert = readPem('certificate', o.certFile);
  const key = readPem('private key', o.keyFile);
  const ca = readPem('client CA', o.clientCaFile);
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new Error(`meshward: TLS certificate ${o.certFile}: not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    new X509Certificate(ca);
  } catch (err) {
    throw new Error(`meshward: TLS client CA ${o.clientCaFile}: not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new Error(`meshward: TLS key ${o.keyFile} does not fit certificate ${o.certFile}: ${(err as Error).message}`);
  }
  const refreshIntervalMs = o.refreshIntervalMs ?? DEFAULT_TLS_REFRESH_MS;
  if (!Number.isInteger(refreshIntervalMs) || refreshIntervalMs < 100) throw new Error('meshward: TLS refresh interval must be an integer >= 100 ms');
}

/** Credentials that re-read the files every refresh interval (rotation without restart) and require a
 *  client certificate chaining to the CA. Resolves once the files are loaded: grpc-js drops every
 *  connection that arrives before the watcher's first read. */
export async function mtlsServerCredentials(o: ServerTlsOptions): Promise<grpc.ServerCredentials> {
  checkTlsFiles(o);
  const refreshIntervalMs = o.refreshIntervalMs ?? DEFAULT_TLS_REFRESH_MS;
  const files = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: o.certFile, privateKeyFile: o.keyFile, caCertificateFile: o.clientCaFile, refreshIntervalMs,
  });
  // The provider keeps what it read and hands it to the server's listener at once.
  await new Promise<void>((resolve) => {
    const loaded = (): void => { files.removeIdentityCertificateListener(loaded); resolve(); };
    files.addIdentityCertificateListener(loaded);
  });
  return grpc.experimental.createCertificateProviderServerCredentials(files, files, true);
}
