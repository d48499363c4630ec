// An HTTP answer of `chunks` x 64 KiB YAML comment lines after a first line, streamed without
// content-length (so a size cap must hold while reading) and respecting backpressure.
import type { ServerResponse } from 'node:http';

export function streamHugeYaml(res: ServerResponse, firstLine: string, chunks: number): void {
  res.write(firstLine);
  const chunk = `# ${'x'.repeat(64 * 1024)}\n`;
  let sent = 0;
  const pump = (): void => {
    while (sent < chunks && res.write(chunk)) sent++;
    if (sent < chunks) res.once('drain', pump);
    else res.end();
  };
  // The client hangs up once over its cap.
  res.on('error', () => {});
  pump();
}
