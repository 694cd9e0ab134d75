import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SummaryCounts, Invariant } from './checks';
import type { DriverStats, HttpTally } from './driver';
import type { ChaosCounts } from './faults';

export interface Timings {
  setup_s: number;
  drive_s: number;
  quiesce_s: number;
  checks_s: number;
  wall_s: number;
}

export interface ChaosReport {
  run_id: string;
  seed: number;
  command: string;
  finished_at: string;
  machine: { cpus: number; cpu_model: string; mem_gb: number };
  options: Record<string, unknown>;
  settings: Record<string, unknown>;
  passed: boolean;
  invariants: Invariant[];
  summary: SummaryCounts & {
    driver: DriverStats & { http: HttpTally };
    chaos: ChaosCounts;
    unexpected_exits: Record<string, number>;
    operator_retries_sent: number;
    timings: Timings;
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
export const seconds = (ms: number) => round1(ms / 1_000);

function counts(map: Record<string, number>): string {
  const total = Object.values(map).reduce((a, b) => a + b, 0);
  const parts = Object.entries(map).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v}`);
  return `${total}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

export function summaryTable(r: ChaosReport): string {
  const s = r.summary;
  const c = s.chaos;
  const d = s.driver;
  const t = s.timings;
  const ue = s.unexpected_exits;
  const tokens = Object.entries(s.orders_by_token).map(([token, m]) => `${token} (${counts(m)})`).join('; ');
  const lines: [string, string][] = [
    ['payments by status', counts(s.payments_by_status)],
    ['orders by status', counts(s.orders_by_status)],
    ['orders by token', tokens],
    ['PSP attempts (POSTs)', counts(s.psp_attempts_by_outcome)],
    ['PSP charges by status', counts(s.psp_charges_by_status)],
    ['webhook events (PSP)', `${counts(s.webhook_events_by_fate)}; ${s.webhook_deliveries} deliveries, ${s.webhook_duplicated_deliveries} events delivered twice (duplicated)`],
    ['webhooks received (API)', `${counts(s.webhooks_received_by_route)}; ${s.webhooks_received_unapplied} left unapplied`],
    ['worker kills', `${c.worker_kills} (SIGKILL; slowest restart to polling ${c.worker_restart_ms_max} ms), ${ue.worker ?? 0} exits on its own`],
    ['Temporal restarts', `${c.temporal_restarts} (SIGTERM${c.temporal_restart_forced ? ', SIGKILLed after the grace period' : ''}; down ${c.temporal_down_ms ?? '-'} ms), ${ue.temporal ?? 0} exits on its own`],
    ['API restarts', `${c.api_restarts} (SIGTERM${c.api_restart_forced ? ', SIGKILLed after the 10 s grace period' : ''}; down ${c.api_down_ms ?? '-'} ms), ${ue.api ?? 0} exits on its own; sandbox PSP ${ue.sandbox ?? 0} exits on its own`],
    ['retries / parks', `PSP charge POST retried for ${s.psp_orders_with_retried_posts} orders; ${s.order_parks} parks (needs_attention) of ${s.orders_parked} orders; ${s.operator_retries_sent} operator retries sent, ${s.operator_retries_applied} applied`],
    ['driver', `${d.sent} payments sent, ${d.accepted} accepted; ${d.posts} POSTs (${d.post_retries} retries, ${d.replays_sent} keys sent twice on purpose), ${d.gets} GETs (${d.get_status_mismatch} disagreeing with the database); ${d.http.network_errors} without an answer; HTTP ${Object.entries(d.http.by_status).sort().map(([k, v]) => `${k}×${v}`).join(' ')}`],
    ['wall time', `${t.wall_s} s (setup ${t.setup_s} s, drive ${t.drive_s} s, quiescence ${t.quiesce_s} s, checks ${t.checks_s} s)`],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return [`summary (run ${r.run_id}, seed ${r.seed})`, ...lines.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}

export function machine(): ChaosReport['machine'] {
  return { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', mem_gb: round1(os.totalmem() / 2 ** 30) };
}

export function writeJson(out_dir: string, report: ChaosReport): string {
  fs.mkdirSync(out_dir, { recursive: true });
  const stamp = report.finished_at.replace(/[:.]/g, '-');
  const file = path.join(out_dir, `chaos-${stamp}.json`);
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
