import { randomUUID } from 'node:crypto';
import type { Knex } from '../../src/db';
import { signPayload } from '../../src/psp/signature';
import { statusRank, TERMINAL_RANK, type OrderStatus, type PaymentStatus } from '../../src/domain/status';
import { TEST_WEBHOOK_SECRET, type Reply } from './stack';
import { apiCall, type CreatePaymentRequest, type CreatePayoutRequest, type CreateRefundRequest } from './api-client';

export function checkoutBody(opts: { payment_method?: string; return_url?: string; sellers?: number } = {}) {
  const sellers = opts.sellers ?? 1;
  return {
    buyer: { id: `buyer_${randomUUID()}` },
    currency: 'USD',
    orders: Array.from({ length: sellers }, (_, i) => ({ seller_id: `seller_${i}_${randomUUID()}`, amount: `${10 + i}.00` })),
    ...(opts.payment_method === undefined ? {} : { payment_method: opts.payment_method }),
    ...(opts.return_url === undefined ? {} : { return_url: opts.return_url }),
  };
}

export async function createPayment(api_url: string, key: string, body: CreatePaymentRequest) {
  return await apiCall(api_url, 'post', '/v1/payments', { key, idempotency_key: randomUUID(), body });
}

export async function createRefund(api_url: string, key: string, payment_id: string, body: CreateRefundRequest, idempotency_key: string = randomUUID()) {
  return await apiCall(api_url, 'post', '/v1/payments/{id}/refunds', { key, idempotency_key, params: { id: payment_id }, body });
}

export async function getRefund(api_url: string, key: string, refund_id: string) {
  return await apiCall(api_url, 'get', '/v1/refunds/{id}', { key, params: { id: refund_id } });
}

export async function createPayout(api_url: string, key: string, body: CreatePayoutRequest, idempotency_key: string = randomUUID()) {
  return await apiCall(api_url, 'post', '/v1/payouts', { key, idempotency_key, body });
}

export async function getPayout(api_url: string, key: string, payout_id: string) {
  return await apiCall(api_url, 'get', '/v1/payouts/{id}', { key, params: { id: payout_id } });
}

export async function putBankAccount(api_url: string, key: string, seller_id: string, account_number: string) {
  return await apiCall(api_url, 'put', '/v1/sellers/{seller_id}/bank_account', { key, params: { seller_id }, body: { account_number } });
}

export interface HistoryRow {
  payment_id: string;
  order_id: string | null;
  from_status: string | null;
  to_status: string;
}

export async function statusHistory(db: Knex, payment_id: string): Promise<HistoryRow[]> {
  return await db('status_history').where({ payment_id }).orderBy('id').select<HistoryRow[]>('payment_id', 'order_id', 'from_status', 'to_status');
}

/** The status sequence of the payment (order_id null) or of one order. */
export function sequenceOf(rows: HistoryRow[], order_id: string | null): string[] {
  return rows.filter((r) => r.order_id === order_id).map((r) => r.to_status);
}

/** Every recorded change moved forward: rank never drops, nothing follows a terminal status. */
export function expectForwardOnly(rows: HistoryRow[]): void {
  const by_subject = new Map<string, string[]>();
  for (const r of rows) {
    const subject = r.order_id ?? r.payment_id;
    by_subject.set(subject, [...(by_subject.get(subject) ?? []), r.to_status]);
  }
  for (const [subject, statuses] of by_subject) {
    for (let i = 1; i < statuses.length; i++) {
      const before = statusRank(statuses[i - 1] as OrderStatus | PaymentStatus);
      const after = statusRank(statuses[i] as OrderStatus | PaymentStatus);
      if (before === TERMINAL_RANK || after < before) throw new Error(`${subject} moved backwards: ${statuses.join(' -> ')}`);
    }
  }
}

/** Delivers a webhook the way the PSP does: the exact bytes, signed with `t.` + body. */
export async function postWebhook(api_url: string, raw_body: string, opts: { secret?: string; t_unix?: number; header?: string | null } = {}): Promise<Reply> {
  const t_unix = opts.t_unix ?? Math.floor(Date.now() / 1000);
  const header = opts.header === undefined ? signPayload(opts.secret ?? TEST_WEBHOOK_SECRET, raw_body, t_unix) : opts.header;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (header !== null) headers['psp-signature'] = header;
  const res = await fetch(`${api_url}/webhooks/psp`, { method: 'POST', headers, body: raw_body });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body };
}

export interface SandboxEvent {
  id: string;
  type: string;
  object_id: string;
  status: string;
  deliveries: number;
  event: { id: string; type: string; data: { object: Record<string, unknown> } };
}

export async function sandboxEvents(psp_url: string, object_id: string): Promise<SandboxEvent[]> {
  const res = await fetch(`${psp_url}/_sandbox/events?object_id=${encodeURIComponent(object_id)}`);
  return ((await res.json()) as { data: SandboxEvent[] }).data;
}

/** Submits the hosted checkout form as a browser would (urlencoded POST, no redirect follow). */
export async function submitCheckoutForm(checkout_url: string, card_number: string): Promise<Response> {
  const form = new URLSearchParams({ card_number, expiry: '12/39', cvc: '123', name: 'Test Buyer' });
  return await fetch(checkout_url, { method: 'POST', body: form, redirect: 'manual' });
}

export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeout_ms = 30_000): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null && value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting until ${what}`);
}
