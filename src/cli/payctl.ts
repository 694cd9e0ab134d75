import { withTemporalClient } from '../services/temporal-client';
import { loadEnv } from '../config';
import { createLogger } from '../logger';
import { commandOrder, listParkedOrders } from '../services/operator';
import { createDb, type Knex } from '../db';
import { formatAmount, isCurrency, parseAmount } from '../domain/money';
import { AppError } from '../domain/errors';
import { expireHolds } from '../ledger/holds';
import { reconClose, reconItems, reconReport, reconRun } from './recon';
import { ListReconItemsQuery } from '../api/schemas';
import { DIFFERENCE_CLASSES, ITEM_STATUSES } from '../recon/classify';
import { accountBalances, available, paymentPostings, pending, verifyLedger, type PostingEntry, type PostingTransaction } from '../ledger/store';
import { findPaymentWithMerchantName, type PaymentRow } from '../aggregates/payment';
import { ordersOfPayments, type OrderRow } from '../aggregates/order';
import { PSP_EVENT_ROUTES } from '../domain/psp-events';

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
                                               payment, dispute, unknown (no such object here) or ignored
  payment history <payment_id>                 every status change of a payment and its orders
  payment show <payment_id> [--json]           one payment for an operator: its orders, the PSP events
                                               received for it, its ledger transactions, its status
                                               history and its workflow in the Temporal UI
  order list --status needs_attention [--limit N]
                                               parked orders (PSP retries ran out) with their reason
  order retry <order_id> [--reason R]          charge a parked order again (same idempotency key)
  order cancel <order_id> --reason R           cancel a parked order (a possible charge is voided or
                                               refunded at the PSP first)
  recon run --date YYYY-MM-DD [--fix-wait-ms N] [--json]
                                               reconcile a UTC day with the PSP's settlement file now
                                               (idempotent per day; progress on a terminal), then report
  recon report --date YYYY-MM-DD [--json]      the day's latest run: matched, each difference class with
                                               counts and amounts, the open queue
  recon items [--date D] [--status S] [--class C] [--limit N] [--json]
                                               the finance queue (status open|resolved|written_off)
  recon resolve <item_id> --note N             close an item as explained or fixed by hand
  recon write-off <item_id> --note N           close an item as written off`;

class UsageError extends Error {}

interface Args {
  words: string[];
  flags: Map<string, string | true>;
}

const FLAGS_WITH_VALUE = new Set(['--currency', '--limit', '--percent-bps', '--fixed', '--route', '--status', '--reason', '--date', '--note', '--class', '--fix-wait-ms']);
const FLAGS = new Set(['--json', '--unapplied', ...FLAGS_WITH_VALUE]);
const EVENT_ROUTES: ReadonlySet<string> = new Set(PSP_EVENT_ROUTES);

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
  if (route !== undefined && !EVENT_ROUTES.has(route)) throw new UsageError(`--route is one of ${PSP_EVENT_ROUTES.join(', ')}`);
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

const failureOf = (r: { failure_code: string | null; failure_message: string | null }): string | null =>
  r.failure_code === null && r.failure_message === null ? null : [r.failure_code, r.failure_message].filter((x) => x !== null).join(': ');

type ShownPayment = PaymentRow & { merchant_name: string };

/** The rows `payment show` prints: the payment and its orders, events, ledger postings and status history. */
async function loadPaymentRows(db: Knex, payment_id: string) {
  const payment: ShownPayment | undefined = await findPaymentWithMerchantName(db, payment_id);
  if (payment === undefined) return null;
  const orders = await ordersOfPayments(db, [payment_id]);
  // Events applied to (or meant for) the payment or one of its orders; an ignored one keeps only its order id.
  const order_ids = orders.map((o) => o.id);
  const events = await db('psp_event')
    .where((q) => (order_ids.length === 0 ? q.where({ payment_id }) : q.where({ payment_id }).orWhereIn('order_id', order_ids)))
    .orderBy([{ column: 'received_at' }, { column: 'id' }])
    .select<EventLine[]>('id', 'type', 'route', 'object_id', 'payment_id', 'order_id', 'note', 'deliveries', 'received_at', 'applied_at');
  const { transactions, entries } = await paymentPostings(db, payment_id);
  const history: { order_id: string | null; from_status: string | null; to_status: string; changed_at: Date }[] = await db('status_history')
    .where({ payment_id })
    .orderBy('id')
    .select('order_id', 'from_status', 'to_status', 'changed_at');
  return { payment, orders, events, transactions, entries, history };
}

const failureFields = (r: { failure_code: string | null; failure_message: string | null }) => ({ failure_code: r.failure_code, failure_message: r.failure_message });

function shownPayment(payment: ShownPayment) {
  return {
    id: payment.id,
    status: payment.status,
    amount: formatAmount(BigInt(payment.amount_minor), payment.currency),
    currency: payment.currency,
    merchant_id: payment.merchant_id,
    merchant_name: payment.merchant_name,
    buyer_id: payment.buyer_id,
    ...failureFields(payment),
    workflow_id: payment.workflow_id,
    created_at: payment.created_at.toISOString(),
    updated_at: payment.updated_at.toISOString(),
  };
}

function shownOrder(o: OrderRow) {
  return {
    id: o.id,
    status: o.status,
    amount: formatAmount(BigInt(o.amount_minor), o.currency),
    currency: o.currency,
    seller_id: o.seller_id,
    psp_reference: o.psp_reference,
    charge_attempts: o.charge_attempts,
    ...failureFields(o),
    psp_version: o.psp_version,
    wallet_updated: o.wallet_updated,
    ledger_updated: o.ledger_updated,
    updated_at: o.updated_at.toISOString(),
  };
}

function shownEvent(e: EventLine) {
  return {
    id: e.id,
    type: e.type,
    route: e.route,
    object_id: e.object_id,
    order_id: e.order_id,
    applied: e.applied_at !== null,
    applied_at: e.applied_at?.toISOString() ?? null,
    deliveries: e.deliveries,
    note: e.note,
    received_at: e.received_at.toISOString(),
  };
}

function shownTransaction(t: PostingTransaction, entries: PostingEntry[]) {
  return {
    id: String(t.id),
    reference: t.reference,
    kind: t.kind,
    description: t.description,
    order_id: t.order_id,
    created_at: t.created_at.toISOString(),
    entries: entries
      .filter((e) => String(e.transaction_id) === String(t.id))
      .map((e) => {
        const minor = BigInt(e.amount_minor);
        return { account: e.account, direction: minor > 0n ? 'debit' : 'credit', amount: formatAmount(minor > 0n ? minor : -minor, e.currency), currency: e.currency, phase: e.phase };
      }),
  };
}

/** Everything stored about one payment, in the shape `payment show` prints (amounts as decimal strings). */
async function loadPaymentFacts(db: Knex, payment_id: string) {
  const rows = await loadPaymentRows(db, payment_id);
  if (rows === null) return null;
  const env = loadEnv();
  return {
    payment: shownPayment(rows.payment),
    temporal_ui_url: `${env.TEMPORAL_UI_URL.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(env.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(rows.payment.workflow_id)}`,
    orders: rows.orders.map(shownOrder),
    psp_events: rows.events.map(shownEvent),
    ledger_transactions: rows.transactions.map((t) => shownTransaction(t, rows.entries)),
    status_history: rows.history.map((h) => ({ order_id: h.order_id, from_status: h.from_status, to_status: h.to_status, changed_at: h.changed_at.toISOString() })),
  };
}

async function paymentShow(db: Knex, args: Args): Promise<number> {
  const [payment_id, extra] = args.words;
  if (payment_id === undefined || extra !== undefined) throw new UsageError('payment show takes one payment id');
  const facts = await loadPaymentFacts(db, payment_id);
  if (facts === null) {
    process.stderr.write(`payctl: no payment ${payment_id}\n`);
    return 1;
  }
  if (args.flags.has('--json')) {
    out(JSON.stringify(facts));
    return 0;
  }
  const { payment: p } = facts;
  const failure = failureOf(p);
  out(`payment ${p.id} ${p.status} ${p.amount} ${p.currency}`);
  out(`  merchant ${p.merchant_id} (${p.merchant_name}), buyer ${p.buyer_id}`);
  out(`  created ${p.created_at}, updated ${p.updated_at}`);
  if (failure !== null) out(`  failure ${failure}`);
  out(`  workflow ${p.workflow_id} ${facts.temporal_ui_url}`);
  out(`orders (${facts.orders.length}):`);
  for (const o of facts.orders) {
    out(`  ${o.id} ${o.status} ${o.amount} ${o.currency} seller ${o.seller_id} psp_reference ${o.psp_reference ?? '-'} charge_attempts ${o.charge_attempts} psp_version ${o.psp_version ?? '-'} books ${o.ledger_updated ? 'written' : 'not written'}`);
    const order_failure = failureOf(o);
    if (order_failure !== null) out(`    failure ${order_failure}`);
  }
  out(`psp events (${facts.psp_events.length}):`);
  for (const e of facts.psp_events) {
    const applied = e.applied_at === null ? 'NOT APPLIED' : `applied ${e.applied_at}`;
    out(`  ${e.received_at} ${e.id} ${e.type} ${e.route} ${e.order_id ?? p.id} x${e.deliveries} ${applied}${e.note === null ? '' : ` (${e.note})`}`);
  }
  out(`ledger transactions (${facts.ledger_transactions.length}):`);
  for (const t of facts.ledger_transactions) {
    out(`  ${t.id} ${t.reference} ${t.kind} ${t.created_at} ${t.description}`);
    for (const e of t.entries) out(`    ${e.direction.padEnd(6)} ${e.account} ${e.amount} ${e.currency} ${e.phase}`);
  }
  out(`status history (${facts.status_history.length}):`);
  for (const h of facts.status_history) out(`  ${h.changed_at} ${h.order_id ?? p.id} ${h.from_status ?? '(new)'} -> ${h.to_status}`);
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
    const order = await withTemporalClient(loadEnv(), (temporal) =>
      commandOrder({ db, temporal, log: createLogger('payctl', 'silent') }, order_id, { action, reason: reason ?? `${action} by operator`, requested_by: `payctl:${process.env.USER ?? 'unknown'}` }),
    );
    out(`${action} sent to order ${order.id} (payment ${order.payment_id}); its workflow carries it out`);
    return 0;
  };
}

function requireDate(args: Args): string {
  const date = flagValue(args, '--date');
  if (date === undefined) throw new UsageError('--date YYYY-MM-DD is required');
  return date;
}

function noWords(args: Args, command: string): void {
  if (args.words.length > 0) throw new UsageError(`${command} takes no arguments`);
}

async function reconRunCommand(db: Knex, args: Args): Promise<number> {
  noWords(args, 'recon run');
  const wait = flagValue(args, '--fix-wait-ms');
  if (wait !== undefined && !/^[0-9]{1,7}$/.test(wait)) throw new UsageError('--fix-wait-ms takes a whole number of milliseconds up to 3600000');
  if (wait !== undefined && Number(wait) > 3_600_000) throw new UsageError('--fix-wait-ms takes a whole number of milliseconds up to 3600000');
  return await reconRun(db, loadEnv(), { date: requireDate(args), fix_wait_ms: wait === undefined ? undefined : Number(wait), json: args.flags.has('--json') }, out);
}

async function reconReportCommand(db: Knex, args: Args): Promise<number> {
  noWords(args, 'recon report');
  return await reconReport(db, { date: requireDate(args), json: args.flags.has('--json') }, out);
}

async function reconItemsCommand(db: Knex, args: Args): Promise<number> {
  noWords(args, 'recon items');
  const filter = ListReconItemsQuery.pick({ status: true, class: true }).safeParse({ status: flagValue(args, '--status'), class: flagValue(args, '--class') });
  if (!filter.success) throw new UsageError(`--status is one of ${ITEM_STATUSES.join(', ')}; --class is one of ${DIFFERENCE_CLASSES.join(', ')}`);
  return await reconItems(db, { ...filter.data, date: flagValue(args, '--date'), limit: limitOf(args, 100), json: args.flags.has('--json') }, out);
}

function reconCloseCommand(status: 'resolved' | 'written_off') {
  return async (db: Knex, args: Args): Promise<number> => {
    const [item_id, extra] = args.words;
    if (item_id === undefined || extra !== undefined) throw new UsageError('takes one item id');
    const note = flagValue(args, '--note');
    if (note === undefined) throw new UsageError('--note is required: say why the item is closed');
    return await reconClose(db, item_id, status, note, out);
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
  'payment show': paymentShow,
  'order list': orderList,
  'order retry': orderCommand('retry'),
  'order cancel': orderCommand('cancel'),
  'recon run': reconRunCommand,
  'recon report': reconReportCommand,
  'recon items': reconItemsCommand,
  'recon resolve': reconCloseCommand('resolved'),
  'recon write-off': reconCloseCommand('written_off'),
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

// `payctl … | head` closes the pipe early: that ends the output, it is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`payctl: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
