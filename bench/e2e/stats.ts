import fs from 'node:fs';

/** Nearest-rank percentile of unsorted samples; null when there are none. */
export function percentile(samples: number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return round1(sorted[rank] ?? 0);
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function maxOf(samples: number[]): number | null {
  return samples.length === 0 ? null : round1(samples.reduce((a, b) => Math.max(a, b), -Infinity));
}

// ---------------------------------------------------------------------------------------------
// CPU and RSS from /proc (Linux). A process's CPU is utime + stime in clock ticks.

const CLOCK_TICKS_PER_S = 100; // USER_HZ: 100 on every Linux this runs on
const PROC_SCAN_MAX = 100_000; // bound on /proc entries looked at per sample

interface ProcSample {
  cpu_ticks: number;
  rss_kb: number;
}

function readProc(pid: number): ProcSample | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const cpu_ticks = Number(fields[11]) + Number(fields[12]);
    const rss_line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m);
    return { cpu_ticks, rss_kb: rss_line ? Number(rss_line[1]) : 0 };
  } catch {
    return null; // exited between listing and reading
  }
}

/** Every postgres process on the box (postmaster and backends come and go during a run). */
export function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc').slice(0, PROC_SCAN_MAX)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

export interface ProcessUsage {
  cpu_pct: number; // average over the window; 100 = one core busy
  cpu_ms: number; // user + system CPU spent in the window
  rss_mb_max: number;
}

/**
 * CPU ms per completed payment for each process group and their total: the window's CPU over the
 * payments that reached a terminal status in the same window (steady state: what one payment costs).
 * Null when none completed (nothing to divide by).
 */
export function cpuMsPerPayment(usage: Record<string, ProcessUsage>, completed: number): Record<string, number> | null {
  if (completed <= 0) return null;
  const per: Record<string, number> = {};
  let total = 0;
  for (const [name, u] of Object.entries(usage)) {
    per[name] = round1(u.cpu_ms / completed);
    total += u.cpu_ms;
  }
  per.total = round1(total / completed);
  return per;
}

/** Samples named process groups once a second; usage() covers start() .. now. */
export class ProcSampler {
  private readonly first = new Map<string, Map<number, number>>();
  private readonly last = new Map<string, Map<number, number>>();
  private readonly rss_kb_max = new Map<string, number>();
  private started_ms = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly groups: Record<string, () => number[]>) {}

  start(interval_ms = 1_000): void {
    this.started_ms = Date.now();
    this.first.clear();
    this.last.clear();
    this.rss_kb_max.clear();
    this.sample();
    this.timer = setInterval(() => this.sample(), interval_ms);
  }

  stop(): Record<string, ProcessUsage> {
    clearInterval(this.timer);
    this.sample();
    const elapsed_s = Math.max(0.001, (Date.now() - this.started_ms) / 1_000);
    const usage: Record<string, ProcessUsage> = {};
    for (const name of Object.keys(this.groups)) {
      const first = this.first.get(name) ?? new Map<number, number>();
      let ticks = 0;
      for (const [pid, end] of this.last.get(name) ?? []) ticks += end - (first.get(pid) ?? 0);
      usage[name] = { cpu_pct: round1((100 * ticks) / CLOCK_TICKS_PER_S / elapsed_s), cpu_ms: Math.round((1_000 * ticks) / CLOCK_TICKS_PER_S), rss_mb_max: round1((this.rss_kb_max.get(name) ?? 0) / 1024) };
    }
    return usage;
  }

  private sample(): void {
    for (const [name, pids] of Object.entries(this.groups)) {
      const first = this.first.get(name) ?? new Map<number, number>();
      const last = this.last.get(name) ?? new Map<number, number>();
      const seen_before = this.first.has(name);
      let rss_kb = 0;
      for (const pid of pids()) {
        const s = readProc(pid);
        if (s === null) continue;
        // A process that appears mid-window started at zero ticks inside it.
        if (!first.has(pid)) first.set(pid, seen_before ? 0 : s.cpu_ticks);
        last.set(pid, s.cpu_ticks);
        rss_kb += s.rss_kb;
      }
      this.first.set(name, first);
      this.last.set(name, last);
      this.rss_kb_max.set(name, Math.max(this.rss_kb_max.get(name) ?? 0, rss_kb));
    }
  }
}
