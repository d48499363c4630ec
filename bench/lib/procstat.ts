// CPU time and memory of a process from /proc (Linux), for per-request CPU cost.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const CLK_TCK = Number.parseInt(execFileSync('getconf', ['CLK_TCK']).toString().trim(), 10) || 100;

/** User + system CPU seconds consumed so far by `pid`. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
