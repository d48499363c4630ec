// Test PKI with SPIFFE identities, generated with OpenSSL at run time (never committed):
// an EC P-256 CA and one leaf per service account with URI SAN spiffe://<td>/ns/<ns>/sa/<sa>.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const run = promisify(execFile);

export interface WorkloadCert {
  spiffeId: string;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  caFile: string;
  trustDomain: string;
  workloads: Map<string, WorkloadCert>;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export interface WorkloadSpec { namespace: string; serviceAccount: string }

/** Workload names are "<namespace>/<serviceAccount>". */
export async function generatePki(dir: string, workloads: readonly WorkloadSpec[], trustDomain = 'cluster.local'): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  const ca = path.join(dir, 'ca');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', '/O=meshward-test/CN=meshward-test-root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const out = new Map<string, WorkloadCert>();
  for (const w of workloads) out.set(`${w.namespace}/${w.serviceAccount}`, await issueWorkloadCert(`${ca}.crt`, path.join(dir, `${w.namespace}.${w.serviceAccount}`), w, trustDomain));
  return { caFile: `${ca}.crt`, trustDomain, workloads: out };
}

/** A leaf for `w` signed by the CA of `caFile` (its key beside it as .key), written to `base`.crt/.key:
 *  calling it again on the same base is a certificate rotation. */
export async function issueWorkloadCert(caFile: string, base: string, w: WorkloadSpec, trustDomain = 'cluster.local'): Promise<WorkloadCert> {
  const ca = caFile.replace(/\.crt$/, '');
  const id = spiffeId(trustDomain, w.namespace, w.serviceAccount);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/O=meshward-test/CN=${w.serviceAccount}`]);
  await writeFile(`${base}.ext`, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth,clientAuth',
    `subjectAltName=URI:${id},DNS:${w.serviceAccount}.${w.namespace}.svc`,
  ].join('\n') + '\n');
  await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-days', '2', '-sha256', '-extfile', `${base}.ext`, '-out', `${base}.crt`]);
  return { spiffeId: id, certFile: `${base}.crt`, keyFile: `${base}.key` };
}
