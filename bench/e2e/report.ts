import fs from 'node:fs';
import path from 'node:path';
import type { StepResult, TimelinePoint } from './load';
import { round1 } from './stats';
import type { CeilingShape } from './args';
import type { ProcessUsage } from './stats';

export interface StepReport extends StepResult {
  phase: 'load' | 'overload';
  rate_per_s: number;
  processes: Record<string, ProcessUsage>;
  /** Window CPU / payments completed in the window, per process and `total`; null if none completed. */
  cpu_ms_per_payment: Record<string, number> | null;
  sustainable: boolean;
}

/** --overload: the overload step's numbers plus the drain verdict. */
export interface OverloadReport extends Omit<StepReport, 'timeline'> {
  multiple: number;
  sustainable_rate_per_s: number;
  sustainable_from: 'find_max' | 'flag' | 'find_max_none_sustainable';
  drain_max_s: number;
  accepted_total: number; // warm-up included: every one of them must end terminal
  not_terminal_after_drain: number;
  all_terminal_after_drain: boolean;
  terminal_source: 'database' | 'api';
  timeline: TimelinePoint[];
}

export interface Report extends Omit<StepReport, 'timeline'> {
  run_id: string;
  finished_at: string;
  command: string;
  machine: { cpus: number; cpu_model: string; mem_gb: number };
  target: 'own_stack' | 'url';
  orders_per_payment: number;
  duration_s: number;
  warmup_s: number;
  tokens: string;
  max_sustainable_rate_per_s: number | null; // --find-max
  steps: Omit<StepReport, 'timeline'>[];
  per_payment: Record<string, number> | null;
  ceiling_shape: CeilingShape | null;
  ceiling_per_s: number | null;
  ratio_to_ceiling: number | null;
  overload: OverloadReport | null;
  timeline: TimelinePoint[];
}

const fmt = (x: number | null | undefined) => (x === null || x === undefined ? '-' : String(x));

const STEP_HEADER = ['rate/s', 'sent', 'accepted/s', 'refused/s', 'completed/s', 'accept p50 ms', 'accept p99 ms', 'accept max ms', 'done p50 ms', 'done p99 ms', '5xx', 'errors', 'cpu ms/pay', 'ok'];

function stepRow(s: Omit<StepReport, 'timeline'>): string[] {
  const errors = Object.entries(s.errors_by_code).map(([code, n]) => `${code}:${n}`).join(' ') || '0';
  const rate = s.phase === 'overload' ? `${fmt(s.rate_per_s)} overload` : fmt(s.rate_per_s);
  return [
    rate, fmt(s.sent), fmt(s.accepted_per_s), fmt(s.refused_per_s), fmt(s.completed_per_s),
    fmt(s.accept_latency_ms.p50), fmt(s.accept_latency_ms.p99), fmt(s.accept_latency_ms.max), fmt(s.completion_latency_ms.p50), fmt(s.completion_latency_ms.p99),
    fmt(s.http_5xx), errors, fmt(s.cpu_ms_per_payment?.total), s.sustainable ? 'yes' : 'no',
  ];
}

function overloadLines(o: OverloadReport | null): string[] {
  if (o === null) return [];
  const errors = Object.entries(o.errors_by_code).map(([code, n]) => `${code}:${n}`).join(' ') || '0';
  return [
    '',
    `overload: ${o.multiple} x ${o.sustainable_rate_per_s}/s (sustainable rate from ${o.sustainable_from}) = ${o.rate_per_s}/s offered for ${o.sent} requests`,
    `  accepted ${o.accepted_per_s}/s (accept p99 ${fmt(o.accept_latency_ms.p99)} ms), refused ${o.refused} (${o.refused_per_s}/s, 429 capacity_exceeded), completed ${o.completed_per_s}/s in the window`,
    `  5xx ${o.http_5xx}, errors ${errors}`,
    `  cpu ms/payment: ${Object.entries(o.cpu_ms_per_payment ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`,
    `  drain ${o.drain_s === null ? `not finished within ${o.drain_max_s}` : o.drain_s} s after the offered load; ${o.not_terminal_after_drain} of ${o.accepted_total} accepted payments not terminal (${o.terminal_source}): all terminal ${o.all_terminal_after_drain ? 'yes' : 'NO'}`,
  ];
}

function processTable(r: Report): string {
  const names = Object.keys(r.processes);
  const per = r.cpu_ms_per_payment;
  const rows = names.map((name) => [name, fmt(r.processes[name]?.cpu_pct), fmt(r.processes[name]?.cpu_ms), fmt(per?.[name]), fmt(r.processes[name]?.rss_mb_max)]);
  rows.push(['total', fmt(round1(names.reduce((a, n) => a + (r.processes[n]?.cpu_pct ?? 0), 0))), fmt(names.reduce((a, n) => a + (r.processes[n]?.cpu_ms ?? 0), 0)), fmt(per?.total), '']);
  return table(['process', 'cpu %', 'cpu ms', 'cpu ms/payment', 'rss max MB'], rows);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function humanTable(r: Report): string {
  const steps = table(STEP_HEADER, r.steps.map(stepRow));
  const lines = [
    `bench ${r.run_id} ${r.finished_at}  ${r.machine.cpus} cpu ${r.machine.cpu_model}`,
    `orders/payment ${r.orders_per_payment}, tokens ${r.tokens}, window ${r.duration_s} s after ${r.warmup_s} s warm-up`,
    '',
    steps,
    '',
    `sent ${r.sent} = accepted ${r.accepted} + rejected ${r.rejected} (refused ${r.refused}); completed ${r.completed}, not completed ${r.not_completed}; statuses ${JSON.stringify(r.statuses)}`,
    r.max_sustainable_rate_per_s === null ? '' : `max sustainable rate: ${r.max_sustainable_rate_per_s}/s (completion p99 <= 2000 ms, no errors, none refused)`,
    r.ceiling_per_s === null ? '' : `ceiling (no-op workflows, shape ${r.ceiling_shape ?? '-'}): ${r.ceiling_per_s}/s; payments/s / ceiling/s = ${fmt(r.ratio_to_ceiling)}`,
    r.per_payment === null ? '' : `per payment: ${Object.entries(r.per_payment).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...overloadLines(r.overload),
    '',
    `processes (reported step's window; 100 % = one core; cpu ms/payment = window CPU / ${r.completed_in_window} payments completed in it):`,
    processTable(r),
  ];
  return `${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// SVG, by hand: two panels over the reported step's window — throughput per second (sent,
// accepted, completed) and p99 latency per second (accept, completion).

const SVG = { width: 900, panel_h: 220, margin_l: 70, margin_r: 160, margin_t: 30, gap: 60 } as const;

function polyline(points: [number, number | null][], x: (t: number) => number, y: (v: number) => number, colour: string): string {
  const coords = points.filter((p): p is [number, number] => p[1] !== null).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
  return coords.length === 0 ? '' : `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${coords.join(' ')}"/>`;
}

function panel(title: string, unit: string, top: number, tl: TimelinePoint[], series: [string, string, (p: TimelinePoint) => number | null][]): string {
  const plot_w = SVG.width - SVG.margin_l - SVG.margin_r;
  const t_max = Math.max(1, tl.length - 1);
  const v_max = Math.max(1, ...tl.flatMap((p) => series.map(([, , get]) => get(p) ?? 0)));
  const x = (t: number) => SVG.margin_l + (t / t_max) * plot_w;
  const y = (v: number) => top + SVG.panel_h - (v / v_max) * SVG.panel_h;
  const ticks = [0, 0.5, 1].map((f) => `<text x="${SVG.margin_l - 6}" y="${y(v_max * f) + 4}" text-anchor="end">${Math.round(v_max * f)}</text><line x1="${SVG.margin_l}" x2="${SVG.margin_l + plot_w}" y1="${y(v_max * f)}" y2="${y(v_max * f)}" stroke="#ddd"/>`);
  const lines = series.map(([, colour, get]) => polyline(tl.map((p) => [p.t_s, get(p)]), x, y, colour));
  const legend = series.map(([name, colour], i) => `<text x="${SVG.margin_l + plot_w + 12}" y="${top + 16 + i * 18}" fill="${colour}">${name}</text>`);
  return [
    `<text x="${SVG.margin_l}" y="${top - 10}" font-weight="bold">${title} (${unit})</text>`,
    ...ticks,
    `<line x1="${SVG.margin_l}" x2="${SVG.margin_l + plot_w}" y1="${top + SVG.panel_h}" y2="${top + SVG.panel_h}" stroke="#000"/>`,
    `<text x="${SVG.margin_l + plot_w}" y="${top + SVG.panel_h + 16}" text-anchor="end">${t_max} s after warm-up</text>`,
    ...lines,
    ...legend,
  ].join('\n');
}

export function svgChart(tl: TimelinePoint[]): string {
  const height = SVG.margin_t + 2 * SVG.panel_h + SVG.gap + 30;
  const top2 = SVG.margin_t + SVG.panel_h + SVG.gap;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SVG.width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel('throughput per second', 'payments/s', SVG.margin_t, tl, [['sent', '#888', (p) => p.sent], ['accepted', '#1f77b4', (p) => p.accepted], ['refused', '#ff7f0e', (p) => p.refused], ['completed', '#2ca02c', (p) => p.completed]]),
    panel('p99 latency per second', 'ms', top2, tl, [['accept p99', '#1f77b4', (p) => p.accept_p99_ms], ['completion p99', '#d62728', (p) => p.completion_p99_ms]]),
    '</svg>',
    '',
  ].join('\n');
}

export function writeReports(out_dir: string, r: Report): string[] {
  fs.mkdirSync(out_dir, { recursive: true });
  const base = path.join(out_dir, `e2e-${r.run_id}`);
  const files = [`${base}.json`, `${base}.txt`, `${base}.svg`];
  fs.writeFileSync(files[0] ?? '', `${JSON.stringify(r, null, 2)}\n`);
  fs.writeFileSync(files[1] ?? '', humanTable(r));
  fs.writeFileSync(files[2] ?? '', svgChart(r.timeline));
  if (r.overload !== null) {
    // The overload window and its drain: goodput over time is the picture that matters there.
    files.push(`${base}-overload.svg`);
    fs.writeFileSync(files[3] ?? '', svgChart(r.overload.timeline));
  }
  return files;
}
