// `meshward report FILE`: renders a saved report (the JSON `meshward demo` writes, or what the
// server's admin API answers on GET /report) as terminal tables, HTML, or normalized JSON.
import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { parseReport, type ReportData } from '../report/report-data.ts';
import { renderReportText } from '../report/terminal.ts';
import { renderReportHtml } from '../report/html.ts';

const MAX_REPORT_BYTES = 64 * 1024 * 1024;

export async function loadReport(file: string): Promise<ReportData> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (run `meshward demo` first, or save GET /report from the admin API)' : (err as Error).message}`);
  }
  if (text.length > MAX_REPORT_BYTES) throw new Error(`${file}: larger than ${MAX_REPORT_BYTES} bytes`);
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (err) { throw new Error(`${file}: not JSON (${(err as Error).message})`); }
  return parseReport(doc, file);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerReport(program: Command): void {
  program.command('report')
    .description('render a saved meshward report (demo result or the admin API\'s GET /report) as tables, HTML or JSON')
    .argument('<file>', 'report JSON file, or - for standard input')
    .option('--html <file>', 'also write the self-contained HTML report to this file')
    .option('--json', 'print the validated report as JSON instead of tables')
    .addHelpText('after', '\nExit codes: 0 rendered, 2 usage error or the file is not a meshward report.')
    .action(async (file: string, opts: { html?: string; json?: boolean }) => {
      // `meshward report x.json | head` closes the pipe early: that is not an error.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); throw err; });
      try {
        const report = await loadReport(file);
        if (opts.html) await writeFile(opts.html, renderReportHtml(report));
        process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${renderReportText(report)}\n`);
        if (opts.html && !opts.json) process.stdout.write(`HTML report written to ${opts.html}\n`);
      } catch (err) {
        console.error(`meshward report: ${(err as Error).message}`);
        process.exit(2);
      }
    });
}
