/**
 * npm run bench:recon -- [--lines N] [--keep]
 *
 * Reconciles a generated settlement file of N movements (default 1,000,000) against N orders,
 * with the code the reconciliation activity runs (the PSP client's streaming download, then
 * src/recon/store.ts's one-transaction load, classification and posting), and prints lines/s and
 * the reconciling process's peak RSS (goal: under 300 MB). The file comes over real HTTP from a
 * child process that generates it as it streams, so the two processes' memory stays apart.
 * The orders are written straight into a throwaway database bench_recon_<hex> (dropped at the end
 * unless --keep); some lines differ on purpose, so the difference paths are measured too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../src/db';
import { freePort } from '../src/dev/net';
import { tsCommand } from '../src/dev/run-ts';
import { createPspClient } from '../src/psp/client';
import { SETTLEMENT_FILE_HEADER } from '../src/recon/file';
import { beginRun, finishRun, reconcileFile } from '../src/recon/store';
import { splitFlags, UsageError } from './flags';

const USAGE = 'usage: npm run bench:recon -- [--lines N (1000..5000000, default 1000000)] [--keep]';
const DATE = '2026-11-01';
const ORDERS_PER_PAYMENT = 100;
const CURRENCIES = ['USD', 'EUR', 'JPY'] as const;
// Deliberate differences, by line number: amount changed, line repeated, line left out.
const AMOUNT_EVERY = 10_000;
const DUPLICATE_EVERY = 20_000;
const DROP_EVERY = 25_000;
const EXTRA_LINES = 10;

// The same formulas in SQL (seed) and in the file generator, so undisturbed lines match.
const amountOf = (i: number): bigint => BigInt(1_000 + (i % 5_000));
const feeOf = (i: number): bigint => 30n + (amountOf(i) * 29n) / 1_000n;
const currencyOf = (i: number): string => CURRENCIES[i % 3] as string;
const orderId = (i: number): string => `ord_b_${i}`;
const chargeId = (i: number): string => `ch_b_${i}`;

async function seed(db: Knex, n: number): Promise<void> {
  const payments = Math.ceil(n / ORDERS_PER_PAYMENT);
  await db.transaction(async (trx) => {
    // A throwaway database: skip the status-history triggers while seeding (not what is measured).
    await trx.raw('set local session_replication_role = replica');
    await trx.raw(`insert into merchant (id, name) values ('mer_bench', 'bench')`);
    await trx.raw(
      `insert into payment_event (id, merchant_id, buyer_id, currency, amount_minor, status, workflow_id, workflow_started_at, created_at, updated_at)
       select 'pay_b_' || p, 'mer_bench', 'buyer', 'USD', 1, 'succeeded', 'payment-pay_b_' || p, now(), ?::timestamptz, ?::timestamptz
         from generate_series(0, ? - 1) p`,
      [`${DATE}T00:00:00Z`, `${DATE}T00:00:00Z`, payments],
    );
    await trx.raw(
      `insert into payment_order (id, payment_id, merchant_id, seller_id, amount_minor, currency, status, psp_reference, psp_fee_minor,
                                  commission_bps, commission_minor, wallet_updated, ledger_updated, captured_at)
       select 'ord_b_' || i, 'pay_b_' || (i / ${ORDERS_PER_PAYMENT}), 'mer_bench', 'seller_' || i, 1000 + i % 5000,
              (array['USD','EUR','JPY'])[i % 3 + 1], 'succeeded', 'ch_b_' || i, 30 + ((1000 + i % 5000) * 29) / 1000,
              300, (1000 + i % 5000) * 3 / 100, true, true, ?::timestamptz + (i % 86000000) * interval '1 millisecond'
         from generate_series(0, ? - 1) i`,
      [`${DATE}T00:00:00Z`, n],
    );
  });
  await db.raw('analyze payment_order');
}

function csvLine(i: number, type: string, amount: bigint, psp: string = chargeId(i), key: string = orderId(i)): string {
  const fee = feeOf(i);
  const at = new Date(Date.parse(`${DATE}T00:00:00Z`) + (i % 86_000_000)).toISOString();
  return `${psp},${key},${key},${type},${amount},${currencyOf(i)},${fee},${amount - fee},${at},${at}\n`;
}

/** The file, generated as it is sent (constant memory), with its summary. */
async function serveFile(port: number, n: number): Promise<void> {
  const server = http.createServer((req, res) => {
    void (async () => {
      res.writeHead(200, { 'content-type': 'text/csv', 'x-settlement-lines': String(n) });
      const totals = { count: 0n, amount: 0n, fee: 0n, net: 0n };
      let chunk = `${SETTLEMENT_FILE_HEADER}\n`;
      const emit = async (line: string, amount: bigint, fee: bigint) => {
        totals.count += 1n;
        totals.amount += amount;
        totals.fee += fee;
        totals.net += amount - fee;
        chunk += line;
        if (chunk.length > 64_000) {
          const ok = res.write(chunk);
          chunk = '';
          if (!ok) await once(res, 'drain');
        }
      };
      for (let i = 0; i < n; i++) {
        if (i > 0 && i % DROP_EVERY === 0) continue;
        const amount = i > 0 && i % AMOUNT_EVERY === 0 ? amountOf(i) + 1n : amountOf(i);
        const line = csvLine(i, i % 10 === 0 ? 'capture' : 'charge', amount);
        await emit(line, amount, feeOf(i));
        if (i > 0 && i % DUPLICATE_EVERY === 0) await emit(line, amount, feeOf(i));
      }
      for (let x = 0; x < EXTRA_LINES; x++) await emit(csvLine(x, 'charge', 1_000n, `ch_unknown_${x}`, `ord_unknown_${x}`), 1_000n, feeOf(x));
      res.end(`${chunk}#summary,${totals.count},${totals.amount},${totals.fee},${totals.net}\n`);
    })().catch((err: unknown) => res.destroy(err as Error));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  process.stdout.write('file server listening\n');
}

async function startFileServer(n: number): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const cmd = tsCommand('bench/recon.ts');
  const child = spawn(cmd.command, [...cmd.args, '--serve', String(port), '--lines', String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => (d.toString().includes('listening') ? resolve() : undefined));
    child.once('exit', (code) => reject(new Error(`file server exited (${code})`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

function parse(argv: string[]): { lines: number; keep: boolean; serve: number | null } {
  const flags = splitFlags(argv, new Set(['--lines', '--serve']), new Set(['--keep']));
  const lines = Number(flags.get('--lines') ?? 1_000_000);
  if (!Number.isInteger(lines) || lines < 1_000 || lines > 5_000_000) throw new UsageError('--lines must be a whole number from 1000 to 5000000');
  const serve = flags.has('--serve') ? Number(flags.get('--serve')) : null;
  return { lines, keep: flags.has('--keep'), serve };
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  if (opts.serve !== null) return await serveFile(opts.serve, opts.lines);
  const database_url = `postgres://postgres@127.0.0.1:5432/bench_recon_${randomBytes(4).toString('hex')}`;
  await ensureDatabase(database_url);
  const db = createDb(database_url, 4);
  let server: ChildProcess | null = null;
  try {
    await migrateLatest(db);
    const seed_started = Date.now();
    await seed(db, opts.lines);
    process.stdout.write(`seeded ${opts.lines.toLocaleString('en')} orders in ${((Date.now() - seed_started) / 1000).toFixed(1)} s\n`);
    const file = await startFileServer(opts.lines);
    server = file.child;
    const psp = createPspClient({ base_url: file.url, api_key: 'bench_key_123', timeout_ms: 30 * 60_000 });
    const run = { run_id: `rcn_bench_${randomBytes(4).toString('hex')}`, settlement_date: DATE };
    await beginRun(db, { ...run, workflow_id: 'bench' });
    let rss_peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (rss_peak = Math.max(rss_peak, process.memoryUsage().rss)), 100);
    const started = Date.now();
    const download = await psp.openSettlementFile(DATE, 30 * 60_000);
    const totals = await reconcileFile(db, run, download.lines, (read) => {
      if (read % 200_000 === 0) process.stdout.write(`  ${read.toLocaleString('en')} lines, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB\n`);
    });
    const elapsed_s = (Date.now() - started) / 1000;
    clearInterval(sampler);
    await finishRun(db, run.run_id, totals);
    const max_rss_mb = Math.max(rss_peak / 2 ** 20, process.resourceUsage().maxRSS / 1024);
    const report = {
      lines: totals.lines,
      seconds: Number(elapsed_s.toFixed(1)),
      lines_per_s: Math.round(totals.lines / elapsed_s),
      peak_rss_mb: Math.round(max_rss_mb),
      matched: totals.matched.count,
      differences: Object.fromEntries(Object.entries(totals.differences).map(([k, v]) => [k, v.count])),
    };
    process.stdout.write(`\n${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`reconciled ${report.lines.toLocaleString('en')} lines in ${report.seconds} s: ${report.lines_per_s.toLocaleString('en')} lines/s, peak RSS ${report.peak_rss_mb} MB (goal < 300 MB)\n`);
  } finally {
    server?.kill('SIGTERM');
    await db.destroy();
    if (!opts.keep) await dropDatabase(database_url);
  }
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`bench:recon: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`bench:recon: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
