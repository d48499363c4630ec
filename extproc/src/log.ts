// Structured JSON logs (pino). Secrets never go in: callers log identities and hashes, not tokens.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.MESHWARD_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: 'meshward', level, base: { pid: process.pid } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
