import type { Knex } from 'knex';
import { isPaymentTerminal, type PaymentStatus } from '../domain/status';

/**
 * The operators' read model behind the /metrics gauges: counts across payments, orders, the
 * webhook inbox and reconciliation, taken in one short read-only transaction so every gauge of a
 * scrape shows the same moment. Set-based counts over several homes' tables, so they live here
 * rather than in any one home.
 */
export interface DatabaseSnapshot {
  payments_by_status: Map<string, number>;
  oldest_open_payment_age_s: number;
  orders_needs_attention: number;
  psp_events_unapplied: number;
  psp_events_unknown: number;
  recon_items: { class: string; status: string; count: number }[];
  recon_last_success_s: number | null;
}

export async function readMonitoringSnapshot(db: Knex, timeout_ms: number): Promise<DatabaseSnapshot> {
  return await db.transaction(
    async (trx) => {
      await trx.raw(`set local statement_timeout = ${Math.floor(timeout_ms)}`);
      // One pass over payment_event: the count and the age of the oldest row per status.
      const by_status: { rows: { status: PaymentStatus; count: string; oldest_age_s: number | null }[] } = await trx.raw(
        `select status, count(*) as count, extract(epoch from now() - min(created_at))::float8 as oldest_age_s
           from payment_event group by status`,
      );
      // Each count is served by a partial index (migrations 005, 006).
      const counts: { rows: { orders_needs_attention: string; psp_events_unapplied: string; psp_events_unknown: string }[] } = await trx.raw(
        `select (select count(*) from payment_order where status = 'needs_attention') as orders_needs_attention,
                (select count(*) from psp_event where applied_at is null and route in ('order', 'payment')) as psp_events_unapplied,
                (select count(*) from psp_event where route = 'unknown') as psp_events_unknown`,
      );
      const recon: { rows: { class: string; status: string; count: string }[] } = await trx.raw('select class, status, count(*) as count from recon_item group by class, status');
      const last: { rows: { at_s: number | null }[] } = await trx.raw("select extract(epoch from max(finished_at))::float8 as at_s from recon_run where status = 'succeeded'");
      const c = counts.rows[0];
      const open = by_status.rows.filter((r) => !isPaymentTerminal(r.status));
      return {
        payments_by_status: new Map(by_status.rows.map((r) => [r.status, Number(r.count)])),
        oldest_open_payment_age_s: Math.max(0, ...open.map((r) => r.oldest_age_s ?? 0)),
        orders_needs_attention: Number(c?.orders_needs_attention ?? 0),
        psp_events_unapplied: Number(c?.psp_events_unapplied ?? 0),
        psp_events_unknown: Number(c?.psp_events_unknown ?? 0),
        recon_items: recon.rows.map((r) => ({ class: r.class, status: r.status, count: Number(r.count) })),
        recon_last_success_s: last.rows[0]?.at_s ?? null,
      };
    },
    { readOnly: true },
  );
}

