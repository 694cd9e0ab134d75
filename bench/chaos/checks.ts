import type { Knex } from '../../src/db';
import { verifyLedger } from '../../src/ledger/store';
import { TERMINAL, type Driver } from './driver';

/**
 * The invariants a chaos run must keep, each one query (or a few) against our database and the
 * sandbox PSP's, plus what the driver saw on the wire. Each yields one PASS/FAIL line.
 */

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
  /** Offending ids (a few), for the report. */
  examples?: string[];
}

type Row = Record<string, string | number | boolean | null>;
const EXAMPLES_MAX = 5;

async function rows<T = Row>(db: Knex, sql: string, bindings: readonly unknown[] = []): Promise<T[]> {
  return (await db.raw(sql, bindings as Knex.RawBinding[])).rows as T[];
}

const n = (v: unknown): number => Number(v ?? 0);

async function terminal(db: Knex, accepted: number): Promise<Invariant> {
  const by_status = await rows<{ status: string; n: string }>(db, 'select status, count(*) as n from payment_event group by status');
  const total = by_status.reduce((s, r) => s + n(r.n), 0);
  const open = await rows<{ id: string; status: string; orders: string }>(
    db,
    `select p.id, p.status, string_agg(o.id || '=' || o.status, ',' order by o.id) as orders from payment_event p join payment_order o on o.payment_id = p.id
      where p.status not in (${[...TERMINAL].map(() => '?').join(',')}, 'needs_attention') group by p.id, p.status order by p.id`,
    [...TERMINAL],
  );
  const parked = await rows<{ id: string; payment_id: string }>(db, `select id, payment_id from payment_order where status = 'needs_attention'`);
  const no_reason = await rows<{ id: string }>(db, `select id from payment_order where status = 'needs_attention' and (failure_message is null or failure_message = '')`);
  const parked_payments = by_status.find((r) => r.status === 'needs_attention');
  const terminal_n = by_status.filter((r) => TERMINAL.has(r.status)).reduce((s, r) => s + n(r.n), 0);
  return {
    name: 'terminal_or_parked',
    ok: open.length === 0 && no_reason.length === 0 && total === accepted,
    detail: `${terminal_n}/${total} payments terminal, ${n(parked_payments?.n)} needs_attention (${parked.length} orders, ${no_reason.length} without a reason), ${open.length} still open; ${accepted} accepted by the driver`,
    examples: [...open.map((r) => `${r.id}:${r.status}(${r.orders})`), ...no_reason.map((r) => `${r.id}:no_reason`)].slice(0, EXAMPLES_MAX),
  };
}

interface ChargeCount {
  order_reference: string;
  charges: string;
  succeeded: string;
}

async function pspCharges(psp: Knex): Promise<ChargeCount[]> {
  return await rows<ChargeCount>(psp, `select order_reference, count(*) as charges, count(*) filter (where status = 'succeeded') as succeeded from sandbox_charge group by order_reference`);
}

function oneSucceededCharge(charges: ChargeCount[]): Invariant {
  const dup_succeeded = charges.filter((c) => n(c.succeeded) > 1);
  const dup_any = charges.filter((c) => n(c.charges) > 1);
  return {
    name: 'one_succeeded_charge_per_order',
    ok: dup_succeeded.length === 0,
    detail: `${charges.length} orders charged at the PSP, ${dup_succeeded.length} with more than one succeeded charge (${dup_any.length} with more than one charge of any status)`,
    examples: [...dup_succeeded, ...dup_any].map((c) => `${c.order_reference}:${c.charges} charges/${c.succeeded} succeeded`).slice(0, EXAMPLES_MAX),
  };
}

async function succeededMatchPsp(db: Knex, psp: Knex): Promise<Invariant> {
  const ours = await rows<{ id: string; psp_reference: string | null }>(db, `select id, psp_reference from payment_order where status = 'succeeded'`);
  const theirs = await rows<{ order_reference: string; ids: string[] }>(psp, `select order_reference, array_agg(id order by created_at, id) as ids from sandbox_charge where status = 'succeeded' group by order_reference`);
  const psp_by_order = new Map(theirs.map((t) => [t.order_reference, t.ids]));
  const ours_ids = new Set(ours.map((o) => o.id));
  const not_once_at_psp = ours.filter((o) => (psp_by_order.get(o.id)?.length ?? 0) !== 1);
  const not_ours = theirs.filter((t) => !ours_ids.has(t.order_reference));
  const wrong_reference = ours.filter((o) => {
    const ids = psp_by_order.get(o.id);
    return ids?.length === 1 && ids[0] !== o.psp_reference;
  });
  return {
    name: 'succeeded_orders_match_psp',
    ok: not_once_at_psp.length === 0 && not_ours.length === 0 && wrong_reference.length === 0,
    detail: `${ours.length} orders succeeded here, ${theirs.length} orders with a succeeded charge at the PSP; ${not_once_at_psp.length} of ours without exactly one, ${not_ours.length} charged at the PSP but not succeeded here, ${wrong_reference.length} pointing at another charge`,
    examples: [...not_once_at_psp.map((o) => `${o.id}:ours`), ...not_ours.map((t) => `${t.order_reference}:psp_only`), ...wrong_reference.map((o) => `${o.id}:psp_reference`)].slice(0, EXAMPLES_MAX),
  };
}

async function ledgerClean(db: Knex): Promise<Invariant> {
  const report = await verifyLedger(db);
  return {
    name: 'ledger_verify',
    ok: report.breaks.length === 0,
    detail: `${report.transactions} transactions, ${report.entries} entries, ${report.accounts} accounts; ${report.breaks.length} breaks`,
    examples: report.breaks.map((b) => `${b.kind}:${b.id}:${b.detail}`).slice(0, EXAMPLES_MAX),
  };
}

/** The wallet view against its account's entries, summed here rather than read from the stored balance. */
async function walletsMatchLedger(db: Knex): Promise<Invariant> {
  const checked = await rows<{ code: string; wallet: string | null; pending: string | null; posted_entries: string; pending_entries: string }>(
    db,
    `select a.code, w.balance_minor::text as wallet, w.pending_minor::text as pending,
        (-coalesce(sum(e.amount_minor) filter (where e.phase = 'posted'), 0))::text as posted_entries,
        (-coalesce(sum(e.amount_minor) filter (where e.phase = 'pending'), 0))::text as pending_entries
      from ledger_account a
      left join wallet w on w.merchant_id = a.merchant_id and w.seller_id = a.seller_id and w.currency = a.currency
      left join ledger_entry e on e.account_id = a.id
      where a.code like 'seller_payable:%'
      group by a.code, w.balance_minor, w.pending_minor`,
  );
  const [wallet_rows] = await rows<{ n: string }>(db, 'select count(*) as n from wallet');
  const bad = checked.filter((r) => r.wallet === null || r.wallet !== r.posted_entries || r.pending !== r.pending_entries);
  const extra_wallets = n(wallet_rows?.n) - checked.length;
  return {
    name: 'wallets_match_ledger',
    ok: bad.length === 0 && extra_wallets === 0,
    detail: `${checked.length} seller_payable accounts, ${n(wallet_rows?.n)} wallet rows; ${bad.length} differ from their entries, ${extra_wallets} wallets without an account`,
    examples: bad.map((r) => `${r.code}: wallet ${r.wallet}, entries ${r.posted_entries}`).slice(0, EXAMPLES_MAX),
  };
}

/** Books against orders: one capture per succeeded order, none for others, wallets = Σ(amount − commission). */
async function booksMatchOrders(db: Knex): Promise<Invariant> {
  const captures = await rows<{ id: string; status: string; captures: string; flags: boolean }>(
    db,
    `select o.id, o.status, count(t.id) as captures, (o.wallet_updated and o.ledger_updated) as flags
      from payment_order o left join ledger_transaction t on t.reference = 'order:' || o.id || ':capture'
      group by o.id having (o.status = 'succeeded') <> (count(t.id) = 1) or count(t.id) > 1
        or (o.status = 'succeeded' and not (o.wallet_updated and o.ledger_updated))`,
  );
  const wallets = await rows<{ merchant_id: string; seller_id: string; expected: string; wallet: string | null }>(
    db,
    `select s.merchant_id, s.seller_id, s.expected::text as expected, w.balance_minor::text as wallet
      from (select merchant_id, seller_id, currency, sum(amount_minor - commission_minor) as expected
            from payment_order where status = 'succeeded' group by merchant_id, seller_id, currency) s
      full join wallet w on w.merchant_id = s.merchant_id and w.seller_id = s.seller_id and w.currency = s.currency
      where s.expected is distinct from w.balance_minor and not (s.expected is null and w.balance_minor = 0)`,
  );
  return {
    name: 'books_match_orders',
    ok: captures.length === 0 && wallets.length === 0,
    detail: `${captures.length} orders whose capture postings or wallet/ledger flags do not match their status; ${wallets.length} wallets not equal to the sum of (amount - commission) of their succeeded orders`,
    examples: [...captures.map((c) => `${c.id}:${c.status}:${c.captures} captures`), ...wallets.map((w) => `${w.seller_id}: expected ${w.expected}, wallet ${w.wallet}`)].slice(0, EXAMPLES_MAX),
  };
}

/** Across both databases: what the PSP owes us (amount − fee) and its fees, per succeeded charge. */
async function pspReconciliation(db: Knex, psp: Knex): Promise<Invariant> {
  const [theirs] = await rows<{ net: string | null; fee: string | null }>(psp, `select sum(amount_minor - fee_minor)::text as net, sum(fee_minor)::text as fee from sandbox_charge where status = 'succeeded'`);
  const balance = async (code: string) => {
    const [r] = await rows<{ posted: string | null }>(db, `select sum(posted_minor)::text as posted from ledger_account where code = ?`, [code]);
    return BigInt(r?.posted ?? '0');
  };
  const receivable = await balance('psp_receivable');
  const fees = await balance('psp_fee_expense');
  const net = BigInt(theirs?.net ?? '0');
  const fee = BigInt(theirs?.fee ?? '0');
  return {
    name: 'psp_reconciliation',
    ok: receivable === net && fees === fee,
    detail: `psp_receivable ${receivable} vs PSP succeeded charges net of fees ${net}; psp_fee_expense ${fees} vs PSP fees ${fee} (minor units)`,
  };
}

function noServerErrors(driver: Driver): Invariant {
  const t = driver.tally;
  const by_class: Record<string, number> = {};
  for (const [status, count] of Object.entries(t.by_status)) by_class[`${status[0]}xx`] = (by_class[`${status[0]}xx`] ?? 0) + count;
  return {
    name: 'no_api_5xx',
    ok: t.server_errors_total === 0,
    detail: `${t.requests} requests to our API: ${Object.entries(by_class).sort().map(([k, v]) => `${v} ${k}`).join(', ')}, ${t.network_errors} without an answer (API restarting); ${t.server_errors_total} 5xx`,
    examples: t.server_errors.map((e) => `${e.at} ${e.method} ${e.path} ${e.status} ${e.code ?? ''}`).slice(0, EXAMPLES_MAX),
  };
}

async function idempotentReplays(db: Knex, driver: Driver): Promise<Invariant> {
  const replays = driver.records.filter((r) => r.plan.replay !== 'none');
  const answered = replays.filter((r) => r.replay_same_id !== null);
  const other_id = answered.filter((r) => r.replay_same_id === false);
  const unmarked = answered.filter((r) => r.replay_marked === false);
  const several_ids = driver.records.filter((r) => r.ids.size > 1);
  const accepted = driver.records.filter((r) => r.payment_id !== null).length;
  const [stored] = await rows<{ n: string }>(db, 'select count(*) as n from payment_event');
  const extra = n(stored?.n) - accepted;
  return {
    name: 'idempotent_replays',
    ok: other_id.length === 0 && unmarked.length === 0 && several_ids.length === 0 && extra === 0 && answered.length === replays.length,
    detail: `${replays.length} keys sent twice on purpose (${answered.length} answered both times): ${other_id.length} got another payment, ${unmarked.length} not marked Idempotent-Replayed; ${several_ids.length} keys with several payment ids over ${driver.stats.post_retries} retried POSTs; ${n(stored?.n)} payments stored for ${accepted} keys`,
    examples: [...other_id, ...unmarked, ...several_ids].map((r) => `${r.plan.key}:${[...r.ids].join('/')}`).slice(0, EXAMPLES_MAX),
  };
}

function allAccepted(driver: Driver): Invariant {
  const gave_up = driver.records.filter((r) => r.gave_up !== null);
  const accepted = driver.records.filter((r) => r.payment_id !== null).length;
  return {
    name: 'all_accepted',
    ok: gave_up.length === 0 && accepted === driver.records.length,
    detail: `${accepted}/${driver.records.length} payments accepted (201), ${gave_up.length} given up`,
    examples: gave_up.map((r) => `${r.plan.key}:${r.gave_up}`).slice(0, EXAMPLES_MAX),
  };
}

export async function checkInvariants(db: Knex, psp: Knex, driver: Driver, finished_in_time: { ok: boolean; detail: string }): Promise<Invariant[]> {
  const accepted = driver.records.filter((r) => r.payment_id !== null).length;
  const charges = await pspCharges(psp);
  return [
    { name: 'quiescent_in_time', ...finished_in_time },
    allAccepted(driver),
    await terminal(db, accepted),
    oneSucceededCharge(charges),
    await succeededMatchPsp(db, psp),
    await ledgerClean(db),
    await walletsMatchLedger(db),
    await booksMatchOrders(db),
    await pspReconciliation(db, psp),
    noServerErrors(driver),
    await idempotentReplays(db, driver),
  ];
}

export function invariantLine(i: Invariant): string {
  const examples = !i.ok && i.examples !== undefined && i.examples.length > 0 ? ` [e.g. ${i.examples.join('; ')}]` : '';
  return `${i.ok ? 'PASS' : 'FAIL'}  ${i.name.padEnd(32)} ${i.detail}${examples}`;
}

// ---------------------------------------------------------------------------------------------
// Summary counts (what happened, not judged).

const countMap = (list: { k: string; n: string }[]): Record<string, number> => Object.fromEntries(list.map((r) => [r.k, n(r.n)]));

export interface SummaryCounts {
  payments_by_status: Record<string, number>;
  orders_by_status: Record<string, number>;
  orders_by_token: Record<string, Record<string, number>>;
  psp_attempts_by_outcome: Record<string, number>;
  psp_charges_by_status: Record<string, number>;
  psp_orders_with_retried_posts: number;
  webhook_events_by_fate: Record<string, number>;
  webhook_duplicated_deliveries: number;
  webhook_deliveries: number;
  webhooks_received_by_route: Record<string, number>;
  webhooks_received_unapplied: number;
  order_parks: number;
  orders_parked: number;
  operator_retries_applied: number;
}

export async function summaryCounts(db: Knex, psp: Knex): Promise<SummaryCounts> {
  const payments = await rows<{ k: string; n: string }>(db, 'select status as k, count(*) as n from payment_event group by status order by 1');
  const orders = await rows<{ k: string; n: string }>(db, 'select status as k, count(*) as n from payment_order group by status order by 1');
  const by_token = await rows<{ token: string; status: string; n: string }>(db, 'select p.payment_method as token, o.status, count(*) as n from payment_order o join payment_event p on p.id = o.payment_id group by 1, 2 order by 1, 2');
  const attempts = await rows<{ k: string; n: string }>(psp, 'select outcome as k, count(*) as n from sandbox_request_log group by outcome order by 1');
  const charges = await rows<{ k: string; n: string }>(psp, 'select status as k, count(*) as n from sandbox_charge group by status order by 1');
  const [retried] = await rows<{ n: string }>(psp, `select count(*) as n from (select order_reference from sandbox_request_log where path = '/v1/charges' group by order_reference having count(*) > 1) x`);
  const events = await rows<{ k: string; n: string }>(psp, 'select status as k, count(*) as n from sandbox_event group by status order by 1');
  const [deliveries] = await rows<{ dup: string; total: string }>(psp, `select count(*) filter (where duplicate and status = 'delivered') as dup, coalesce(sum(deliveries), 0) as total from sandbox_event`);
  const routes = await rows<{ k: string; n: string }>(db, 'select route as k, count(*) as n from psp_event group by route order by 1');
  const [unapplied] = await rows<{ n: string }>(db, `select count(*) as n from psp_event where applied_at is null and route in ('order', 'payment')`);
  const [parks] = await rows<{ parks: string; orders: string; resumed: string }>(
    db,
    `select count(*) filter (where to_status = 'needs_attention') as parks, count(distinct order_id) filter (where to_status = 'needs_attention') as orders,
       count(*) filter (where from_status = 'needs_attention' and to_status = 'executing') as resumed
     from status_history where order_id is not null`,
  );
  const tokens: Record<string, Record<string, number>> = {};
  for (const r of by_token) (tokens[r.token] ??= {})[r.status] = n(r.n);
  return {
    payments_by_status: countMap(payments),
    orders_by_status: countMap(orders),
    orders_by_token: tokens,
    psp_attempts_by_outcome: countMap(attempts),
    psp_charges_by_status: countMap(charges),
    psp_orders_with_retried_posts: n(retried?.n),
    webhook_events_by_fate: countMap(events),
    webhook_duplicated_deliveries: n(deliveries?.dup),
    webhook_deliveries: n(deliveries?.total),
    webhooks_received_by_route: countMap(routes),
    webhooks_received_unapplied: n(unapplied?.n),
    order_parks: n(parks?.parks),
    orders_parked: n(parks?.orders),
    operator_retries_applied: n(parks?.resumed),
  };
}
