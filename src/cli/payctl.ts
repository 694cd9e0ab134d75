import { Client, Connection } from '@temporalio/client';
import { loadEnv } from '../config';
import { createLogger } from '../logger';
import { commandOrder, listParkedOrders } from '../services/operator';
import { createDb, type Knex } from '../db';
import { formatAmount, isCurrency, parseAmount } from '../domain/money';
import { AppError } from '../domain/errors';
import { expireHolds } from '../ledger/holds';
import { accountBalances, available, pending, verifyLedger } from '../ledger/store';

/**
 * Operator CLI. Output is for people (one line per fact) with `--json` for scripts.
 * Exit codes: 0 ok, 1 an invariant broke (or nothing found), 2 usage error.
 */
const USAGE = `usage: payctl <command>
  ledger verify [--json]                       every transaction balanced per currency and phase, every
                                               stored balance equal to its entries, every credited order posted
  ledger balance <account> [--currency CUR]    an account's posted, pending and available balance
                                               (e.g. platform_revenue, seller_payable:<merchant>:<seller>)
  ledger expire-holds [--limit N]              void holds past their expiry (the worker also does this)
  merchant fee-rule set <merchant_id> --percent-bps N [--currency CUR --fixed AMOUNT]
                                               the merchant's commission (for one currency, or its default)
  merchant fee-rule list <merchant_id>         the merchant's commission rules
  psp-events list [--route R] [--unapplied] [--limit N]
                                               received PSP webhooks, newest first; route is order,
                                               payment, unknown (no such object here) or ignored
  payment history <payment_id>                 every status change of a payment and its orders
  order list --status needs_attention [--limit N]
                                               parked orders (PSP retries ran out) with their reason
  order retry <order_id> [--reason R]          charge a parked order again (same idempotency key)
  order cancel <order_id> --reason R           cancel a parked order (a possible charge is voided or
                                               refunded at the PSP first)`;

class UsageError extends Error {}

interface Args {
  words: string[];
  flags: Map<string, string | true>;
}

const FLAGS_WITH_VALUE = new Set(['--currency', '--limit', '--percent-bps', '--fixed', '--route', '--status', '--reason']);
const FLAGS = new Set(['--json', '--unapplied', ...FLAGS_WITH_VALUE]);
const EVENT_ROUTES = new Set(['order', 'payment', 'unknown', 'ignored']);

function parseArgs(argv: string[]): Args {
  const words: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      words.push(arg);
      continue;
    }
    if (!FLAGS.has(arg)) throw new UsageError(`unknown flag: ${arg}`);
    if (!FLAGS_WITH_VALUE.has(arg)) {
      flags.set(arg, true);
      continue;
    }
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
    flags.set(arg, value);
  }
  return { words, flags };
}

const out = (line: string) => process.stdout.write(`${line}\n`);

async function ledgerVerify(db: Knex, args: Args): Promise<number> {
  const report = await verifyLedger(db);
  if (args.flags.has('--json')) {
    out(JSON.stringify(report));
  } else {
    out(`ledger: ${report.transactions} transactions, ${report.entries} entries, ${report.accounts} accounts`);
    for (const c of report.currencies) out(`  ${c.currency}: ${c.transactions} transactions, posted sum ${c.posted_sum_minor}, pending sum ${c.pending_sum_minor}`);
    for (const b of report.breaks) out(`BREAK ${b.kind} id=${b.id} currency=${b.currency} ${b.detail}`);
    out(report.breaks.length === 0 ? 'ledger verify: OK' : `ledger verify: ${report.breaks.length} break(s)`);
  }
  return report.breaks.length === 0 ? 0 : 1;
}

async function ledgerBalance(db: Knex, args: Args): Promise<number> {
  const [code, extra] = args.words;
  if (code === undefined || extra !== undefined) throw new UsageError('ledger balance takes one account code');
  const currency = args.flags.get('--currency');
  if (currency === true || (currency !== undefined && !isCurrency(currency))) throw new UsageError('--currency takes an ISO 4217 code');
  const balances = await accountBalances(db, code, currency);
  if (balances.length === 0) {
    process.stderr.write(`payctl: no account ${code}${currency === undefined ? '' : ` in ${currency}`}\n`);
    return 1;
  }
  for (const b of balances) {
    const fmt = (minor: bigint) => formatAmount(minor, b.currency);
    const row = { account: b.code, currency: b.currency, type: b.type, normal_balance: b.normal_balance, available: fmt(available(b)), pending: fmt(pending(b)) };
    out(args.flags.has('--json') ? JSON.stringify(row) : `${b.code} ${b.currency} (${b.type}, ${b.normal_balance}-normal): available ${row.available}, pending ${row.pending}`);
  }
  return 0;
}

function limitOf(args: Args, fallback: number): number {
  const limit_flag = args.flags.get('--limit') ?? String(fallback);
  if (limit_flag === true || !/^[1-9][0-9]{0,5}$/.test(limit_flag)) throw new UsageError('--limit takes a whole number from 1 to 999999');
  return Number(limit_flag);
}

async function ledgerExpireHolds(db: Knex, args: Args): Promise<number> {
  out(`voided ${await expireHolds(db, limitOf(args, 1000))} expired hold(s)`);
  return 0;
}

interface EventLine {
  id: string;
  type: string;
  route: string;
  object_id: string;
  payment_id: string | null;
  order_id: string | null;
  note: string | null;
  deliveries: number;
  received_at: Date;
  applied_at: Date | null;
}

async function pspEventsList(db: Knex, args: Args): Promise<number> {
  if (args.words.length > 0) throw new UsageError('psp-events list takes no arguments');
  const route = flagValue(args, '--route');
  if (route !== undefined && !EVENT_ROUTES.has(route)) throw new UsageError('--route takes order, payment, unknown or ignored');
  const query = db('psp_event').orderBy([{ column: 'received_at', order: 'desc' }, { column: 'id' }]).limit(limitOf(args, 50));
  if (route !== undefined) query.where({ route });
  if (args.flags.has('--unapplied')) query.whereNull('applied_at').whereNot({ route: 'ignored' });
  const rows = await query.select<EventLine[]>('id', 'type', 'route', 'object_id', 'payment_id', 'order_id', 'note', 'deliveries', 'received_at', 'applied_at');
  for (const r of rows) {
    const applied = r.applied_at === null ? 'NOT APPLIED' : `applied ${r.applied_at.toISOString()}`;
    const target = r.order_id ?? r.payment_id ?? r.object_id;
    out(args.flags.has('--json') ? JSON.stringify(r) : `${r.received_at.toISOString()} ${r.id} ${r.type} ${r.route} ${target} x${r.deliveries} ${applied}${r.note === null ? '' : ` (${r.note})`}`);
  }
  if (rows.length === 0 && !args.flags.has('--json')) out('no events');
  return 0;
}

async function paymentHistory(db: Knex, args: Args): Promise<number> {
  const [payment_id, extra] = args.words;
  if (payment_id === undefined || extra !== undefined) throw new UsageError('payment history takes one payment id');
  const rows: { order_id: string | null; from_status: string | null; to_status: string; changed_at: Date }[] = await db('status_history').where({ payment_id }).orderBy('id');
  if (rows.length === 0) {
    process.stderr.write(`payctl: no status history for ${payment_id}\n`);
    return 1;
  }
  for (const r of rows) out(args.flags.has('--json') ? JSON.stringify(r) : `${r.changed_at.toISOString()} ${r.order_id ?? payment_id} ${r.from_status ?? '(new)'} -> ${r.to_status}`);
  return 0;
}

function flagValue(args: Args, flag: string): string | undefined {
  const value = args.flags.get(flag);
  if (value === true) throw new UsageError(`${flag} needs a value`);
  return value;
}

async function feeRuleSet(db: Knex, args: Args): Promise<number> {
  const [merchant_id, extra] = args.words;
  if (merchant_id === undefined || extra !== undefined) throw new UsageError('fee-rule set takes one merchant id');
  const bps = flagValue(args, '--percent-bps');
  if (bps === undefined || !/^[0-9]{1,5}$/.test(bps) || Number(bps) > 10_000) throw new UsageError('--percent-bps takes 0..10000');
  const currency = flagValue(args, '--currency');
  if (currency !== undefined && !isCurrency(currency)) throw new UsageError('--currency takes an ISO 4217 code');
  const fixed = flagValue(args, '--fixed');
  if (fixed !== undefined && currency === undefined) throw new UsageError('--fixed needs --currency (a fixed fee is an amount in one currency)');
  const fixed_minor = fixed === undefined ? 0n : parseAmount(fixed, currency ?? '', '--fixed');
  if ((await db('merchant').where({ id: merchant_id }).first()) === undefined) throw new UsageError(`no merchant ${merchant_id}`);
  await db.transaction(async (trx) => {
    await trx('merchant_fee_rule').where({ merchant_id }).andWhere((q) => (currency === undefined ? q.whereNull('currency') : q.where({ currency }))).delete();
    await trx('merchant_fee_rule').insert({ merchant_id, currency: currency ?? null, percent_bps: Number(bps), fixed_minor: fixed_minor.toString() });
  });
  out(`fee rule for ${merchant_id} ${currency ?? '(default)'}: ${bps} bps + ${currency === undefined ? '0' : formatAmount(fixed_minor, currency)}`);
  return 0;
}

async function feeRuleList(db: Knex, args: Args): Promise<number> {
  const [merchant_id, extra] = args.words;
  if (merchant_id === undefined || extra !== undefined) throw new UsageError('fee-rule list takes one merchant id');
  const rules: { currency: string | null; percent_bps: number; fixed_minor: string }[] = await db('merchant_fee_rule').where({ merchant_id }).orderBy('currency');
  for (const r of rules) out(`${r.currency ?? '(default)'}: ${r.percent_bps} bps + ${r.currency === null ? '0' : formatAmount(BigInt(r.fixed_minor), r.currency)}`);
  if (rules.length === 0) out('no rules: the platform default (COMMISSION_BPS) applies');
  return 0;
}

async function orderList(db: Knex, args: Args): Promise<number> {
  if (args.words.length > 0) throw new UsageError('order list takes no arguments');
  if (flagValue(args, '--status') !== 'needs_attention') throw new UsageError('order list needs --status needs_attention');
  const orders = await listParkedOrders(db, limitOf(args, 100));
  for (const o of orders) out(args.flags.has('--json') ? JSON.stringify(o) : `${o.id} payment ${o.payment_id} seller ${o.seller_id} parked since ${o.updated_at.toISOString()}: ${o.failure_message ?? o.failure_code ?? '?'}`);
  if (orders.length === 0 && !args.flags.has('--json')) out('no orders need attention');
  return 0;
}

function orderCommand(action: 'retry' | 'cancel') {
  return async (db: Knex, args: Args): Promise<number> => {
    const [order_id, extra] = args.words;
    if (order_id === undefined || extra !== undefined) throw new UsageError(`order ${action} takes one order id`);
    const reason = flagValue(args, '--reason');
    if (action === 'cancel' && reason === undefined) throw new UsageError('order cancel needs --reason (it is kept on the order)');
    const env = loadEnv();
    const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
    try {
      const temporal = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
      const order = await commandOrder({ db, temporal, log: createLogger('payctl', 'silent') }, order_id, { action, reason: reason ?? `${action} by operator`, requested_by: `payctl:${process.env.USER ?? 'unknown'}` });
      out(`${action} sent to order ${order.id} (payment ${order.payment_id}); its workflow carries it out`);
      return 0;
    } finally {
      await connection.close();
    }
  };
}

const COMMANDS: Record<string, (db: Knex, args: Args) => Promise<number>> = {
  'ledger verify': ledgerVerify,
  'ledger balance': ledgerBalance,
  'ledger expire-holds': ledgerExpireHolds,
  'merchant fee-rule set': feeRuleSet,
  'merchant fee-rule list': feeRuleList,
  'psp-events list': pspEventsList,
  'payment history': paymentHistory,
  'order list': orderList,
  'order retry': orderCommand('retry'),
  'order cancel': orderCommand('cancel'),
};

async function main(argv: string[]): Promise<number> {
  let args: Args;
  let command: ((db: Knex, args: Args) => Promise<number>) | undefined;
  let name_words = 2;
  try {
    args = parseArgs(argv);
    name_words = COMMANDS[args.words.slice(0, 3).join(' ')] !== undefined ? 3 : 2;
    command = COMMANDS[args.words.slice(0, name_words).join(' ')];
    if (command === undefined) throw new UsageError(args.words.length === 0 ? 'no command' : `unknown command: ${args.words.join(' ')}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`payctl: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  const env = loadEnv();
  const db = createDb(env.DATABASE_URL, 2);
  try {
    return await command(db, { ...args, words: args.words.slice(name_words) });
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof AppError)) throw err;
    process.stderr.write(`payctl: ${err.message}\n${USAGE}\n`);
    return 2;
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`payctl: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
