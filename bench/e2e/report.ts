import fs from 'node:fs';
import path from 'node:path';
import type { StepResult, TimelinePoint } from './load';
import type { ProcessUsage } from './stats';

export interface StepReport extends StepResult {
  rate_per_s: number;
  processes: Record<string, ProcessUsage>;
  sustainable: boolean;
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
  ceiling_per_s: number | null;
  ratio_to_ceiling: number | null;
  timeline: TimelinePoint[];
}

const fmt = (x: number | null | undefined) => (x === null || x === undefined ? '-' : String(x));

function stepRow(s: Omit<StepReport, 'timeline'>): string[] {
  const errors = Object.entries(s.errors_by_code).map(([code, n]) => `${code}:${n}`).join(' ') || '0';
  return [fmt(s.rate_per_s), fmt(s.sent), fmt(s.accepted_per_s), fmt(s.completed_per_s), fmt(s.accept_latency_ms.p50), fmt(s.accept_latency_ms.p99), fmt(s.accept_latency_ms.max), fmt(s.completion_latency_ms.p50), fmt(s.completion_latency_ms.p99), errors, s.sustainable ? 'yes' : 'no'];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function humanTable(r: Report): string {
  const steps = table(['rate/s', 'sent', 'accepted/s', 'completed/s', 'accept p50 ms', 'accept p99 ms', 'accept max ms', 'done p50 ms', 'done p99 ms', 'errors', 'ok'], r.steps.map(stepRow));
  const procs = table(['process', 'cpu %', 'rss max MB'], Object.entries(r.processes).map(([name, u]) => [name, fmt(u.cpu_pct), fmt(u.rss_mb_max)]));
  const lines = [
    `bench ${r.run_id} ${r.finished_at}  ${r.machine.cpus} cpu ${r.machine.cpu_model}`,
    `orders/payment ${r.orders_per_payment}, tokens ${r.tokens}, window ${r.duration_s} s after ${r.warmup_s} s warm-up`,
    '',
    steps,
    '',
    `sent ${r.sent} = accepted ${r.accepted} + rejected ${r.rejected}; completed ${r.completed}, not completed ${r.not_completed}; statuses ${JSON.stringify(r.statuses)}`,
    r.max_sustainable_rate_per_s === null ? '' : `max sustainable rate: ${r.max_sustainable_rate_per_s}/s (completion p99 <= 2000 ms, no errors)`,
    r.ceiling_per_s === null ? '' : `ceiling (no-op workflows, same shape): ${r.ceiling_per_s}/s; payments/s / ceiling/s = ${fmt(r.ratio_to_ceiling)}`,
    r.per_payment === null ? '' : `per payment: ${Object.entries(r.per_payment).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    `processes (reported step's window; 100 % = one core):`,
    procs,
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

export function svgChart(r: Report): string {
  const tl = r.timeline;
  const height = SVG.margin_t + 2 * SVG.panel_h + SVG.gap + 30;
  const top2 = SVG.margin_t + SVG.panel_h + SVG.gap;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SVG.width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel('throughput per second', 'payments/s', SVG.margin_t, tl, [['sent', '#888', (p) => p.sent], ['accepted', '#1f77b4', (p) => p.accepted], ['completed', '#2ca02c', (p) => p.completed]]),
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
  fs.writeFileSync(files[2] ?? '', svgChart(r));
  return files;
}
