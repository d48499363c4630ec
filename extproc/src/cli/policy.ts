// `meshward policy validate FILE...`: checks ApiSecurityPolicy files against the CRD schema and the
// rules a schema cannot express. Exit 0 = all valid, 1 = at least one invalid, 2 = usage error.
import type { Command } from 'commander';
import { loadPolicyFile } from '../policy/file-source.ts';
import { engineSettingsFor } from '../policy/engine-mapping.ts';
import { formatPolicyError } from '../policy/validate.ts';
import { policyKey, type ApiSecurityPolicy } from '../policy/types.ts';
import { PolicySet } from '../policy/precedence.ts';

/** Files are checked without knowing meshward's namespace; policies without one are grouped together. */
const MESH_NAMESPACE_UNSET = 'default';

export interface ValidateReport {
  ok: boolean;
  lines: string[];
}

export async function validatePolicyFiles(files: string[]): Promise<ValidateReport> {
  const lines: string[] = [];
  let ok = true;
  const seen = new Map<string, string>();
  const all: ApiSecurityPolicy[] = [];
  for (const file of files) {
    const r = await loadPolicyFile(file);
    for (const e of r.errors) lines.push(`error: ${formatPolicyError(e)}`);
    if (r.errors.length > 0) ok = false;
    for (const p of r.policies) {
      const key = policyKey(p);
      const other = seen.get(key);
      if (other !== undefined) {
        lines.push(`error: ${file}: ${key}: defined again (also in ${other})`);
        ok = false;
        continue;
      }
      seen.set(key, file);
      all.push(p);
      lines.push(`ok: ${file}: ${key} (mode ${p.spec.mode}, failure mode ${p.spec.failureMode})`);
      for (const n of engineSettingsFor(p.spec).notApplied) lines.push(`note: ${file}: ${key}: ${n.path}: ${n.reason}`);
    }
  }
  // Across files: two policies with the same namespace and selector cannot both apply.
  for (const [loser, winner] of new PolicySet(MESH_NAMESPACE_UNSET, all).shadowed()) {
    lines.push(`error: ${seen.get(loser)}: ${loser}: conflicts with ${winner} (same namespace and selector; ${winner} would apply)`);
    ok = false;
  }
  return { ok, lines };
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work with ApiSecurityPolicy files');
  policy.command('validate')
    .description('validate policy files (YAML or JSON, one or more documents each); exit 1 when any is invalid')
    .argument('<files...>', 'policy files')
    .action(async (files: string[]) => {
      const report = await validatePolicyFiles(files);
      for (const line of report.lines) (line.startsWith('error') ? console.error : console.log)(line);
      process.exit(report.ok ? 0 : 1);
    });
}
