import { orderSignalWorkflowId } from '../domain/workflow-ids';

/**
 * What a difference means, in words a finance person can act on: which field differs, our value
 * and the PSP's, and the order and workflow it concerns. Pure: the store feeds it database rows.
 */
export const DIFFERENCE_CLASSES = [
  'missing_internally',
  'missing_at_psp',
  'amount_mismatch',
  'currency_mismatch',
  'status_mismatch',
  'duplicate',
  'timing',
  'unclassified',
] as const;
export type DifferenceClass = (typeof DIFFERENCE_CLASSES)[number];
export const ITEM_STATUSES = ['open', 'resolved', 'written_off'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** Movement types the file may carry that we match; any other type is `unclassified`. */
export const PAY_IN_TYPES = ['charge', 'capture'] as const;
/** Order statuses where the PSP's decision has not reached us yet: re-asking the PSP fixes them. */
export const AUTO_FIXABLE_STATUSES = ['pending', 'requires_action'] as const;

/** A settlement line that did not match, with the order its key names (if any). */
export interface DifferenceRow {
  line_no: string;
  psp_id: string;
  idempotency_key: string;
  type: string;
  amount_minor: string;
  currency: string;
  fee_minor: string;
  settled_at: Date;
  result: Exclude<DifferenceClass, 'missing_at_psp'>;
  order_id: string | null;
  payment_id: string | null;
  order_status: string | null;
  order_amount_minor: string | null;
  order_currency: string | null;
  order_fee_minor: string | null;
  order_psp_reference: string | null;
  captured_at: Date | null;
  /** For a refund line: our refund its key names, if any. */
  refund_amount_minor?: string | null;
  /** The order's payment's workflow type (legacy payments signal the order's own workflow). */
  workflow_type?: string | null;
}

/** One of our captures the PSP's files never settled. */
export interface UnsettledRow {
  order_id: string;
  payment_id: string;
  psp_reference: string | null;
  amount_minor: string;
  currency: string;
  captured_at: Date;
  workflow_type: string | null;
}

export interface ItemDraft {
  subject: string;
  settlement_date: string;
  class: DifferenceClass;
  status: ItemStatus;
  auto_fixable: boolean;
  line_no: string | null;
  line_type: string | null;
  psp_id: string | null;
  idempotency_key: string | null;
  order_id: string | null;
  payment_id: string | null;
  workflow_id: string | null;
  field: string | null;
  our_value: string | null;
  psp_value: string | null;
  currency: string | null;
  amount_minor: string | null;
  note: string;
}

/** The money movement a line is about; the same movement always gets the same subject. */
export function subjectOf(row: Pick<DifferenceRow, 'type' | 'psp_id' | 'idempotency_key' | 'line_no' | 'result'>, settlement_date: string): string {
  if (row.result === 'duplicate') return `duplicate:${settlement_date}:${row.line_no}`;
  if ((PAY_IN_TYPES as readonly string[]).includes(row.type)) return `payment:${row.idempotency_key}`;
  if (row.type === 'refund') return `refund:${row.psp_id}`;
  if (row.type === 'payout') return `payout:${row.psp_id}`;
  return `${row.type}:${row.psp_id}:${row.idempotency_key}`;
}

const day = (d: Date | null): string => (d === null ? 'never' : d.toISOString().slice(0, 10));

type Explained = Pick<ItemDraft, 'field' | 'our_value' | 'psp_value' | 'note'>;

function explain(row: DifferenceRow, settlement_date: string): Explained {
  const ours = row.order_id === null ? null : `order ${row.order_id}`;
  switch (row.result) {
    case 'missing_internally':
      if (row.order_id === null) return { field: 'order', our_value: 'no record', psp_value: `${row.type} ${row.psp_id}`, note: `the PSP settled a ${row.type} for key ${row.idempotency_key} that matches no order here` };
      if (row.type === 'refund') {
        return row.refund_amount_minor === null || row.refund_amount_minor === undefined
          ? { field: 'refund', our_value: 'no refund recorded', psp_value: `refund of ${row.amount_minor}`, note: `the PSP refunded ${ours ?? `key ${row.idempotency_key}`}; no refund with that key is recorded here` }
          : { field: 'status', our_value: 'refund not succeeded', psp_value: 'refunded', note: `the PSP settled refund ${row.idempotency_key}, which has not succeeded here` };
      }
      return { field: 'status', our_value: row.order_status, psp_value: 'succeeded', note: `the PSP settled ${ours}, which is still ${row.order_status ?? '?'} here` };
    case 'status_mismatch':
      return { field: 'status', our_value: row.order_status, psp_value: 'succeeded', note: `${ours} is ${row.order_status ?? '?'} here, but the PSP settled its ${row.type}` };
    case 'currency_mismatch':
      if (row.type === 'refund') return { field: 'currency', our_value: null, psp_value: row.currency, note: `refund ${row.idempotency_key}: currency differs` };
      return { field: 'currency', our_value: row.order_currency, psp_value: row.currency, note: `${ours}: currency differs` };
    case 'amount_mismatch':
      if (row.type === 'refund') return { field: 'amount', our_value: `-${row.refund_amount_minor ?? '?'}`, psp_value: row.amount_minor, note: `refund ${row.idempotency_key} of ${ours}: amount differs (minor units)` };
      return row.order_amount_minor !== row.amount_minor
        ? { field: 'amount', our_value: row.order_amount_minor, psp_value: row.amount_minor, note: `${ours}: amount differs (minor units)` }
        : { field: 'fee', our_value: row.order_fee_minor, psp_value: row.fee_minor, note: `${ours}: PSP fee differs (minor units)` };
    case 'duplicate':
      return { field: 'line', our_value: 'one movement', psp_value: `line ${row.line_no} repeats it`, note: `the file lists ${row.type} ${row.psp_id} more than once` };
    case 'timing':
      return { field: 'settled_at', our_value: `captured ${day(row.captured_at)}`, psp_value: `settled in the file of ${settlement_date}`, note: `${ours} was captured on ${day(row.captured_at)} and settled a day later or more: a timing difference, nothing is wrong` };
    case 'unclassified':
      return row.order_psp_reference !== null && row.order_psp_reference !== row.psp_id && row.order_id !== null
        ? { field: 'psp_id', our_value: row.order_psp_reference, psp_value: row.psp_id, note: `${ours} points at another PSP charge` }
        : { field: 'type', our_value: null, psp_value: row.type, note: `a ${row.type} movement: no rule matches this kind of line` };
  }
}

export function itemOfLine(row: DifferenceRow, settlement_date: string): ItemDraft {
  const auto_fixable = row.result === 'missing_internally' && row.type !== 'refund' && (AUTO_FIXABLE_STATUSES as readonly (string | null)[]).includes(row.order_status);
  return {
    subject: subjectOf(row, settlement_date),
    settlement_date,
    class: row.result,
    // A timing difference explains itself once the line has arrived: nothing for people to do.
    status: row.result === 'timing' ? 'resolved' : 'open',
    auto_fixable,
    line_no: row.line_no,
    line_type: row.type,
    psp_id: row.psp_id,
    idempotency_key: row.idempotency_key,
    order_id: row.order_id,
    payment_id: row.payment_id,
    workflow_id: row.order_id === null || row.payment_id === null ? null : orderSignalWorkflowId({ order_id: row.order_id, payment_id: row.payment_id, workflow_type: row.workflow_type ?? null }),
    currency: row.currency,
    amount_minor: row.amount_minor,
    ...explain(row, settlement_date),
  };
}

export function itemOfUnsettled(row: UnsettledRow, settlement_date: string): ItemDraft {
  return {
    subject: `payment:${row.order_id}`,
    settlement_date,
    class: 'missing_at_psp',
    status: 'open',
    auto_fixable: false,
    line_no: null,
    line_type: 'charge',
    psp_id: row.psp_reference,
    idempotency_key: row.order_id,
    order_id: row.order_id,
    payment_id: row.payment_id,
    workflow_id: orderSignalWorkflowId(row),
    field: 'line',
    our_value: `captured ${row.captured_at.toISOString()}`,
    psp_value: 'no line',
    currency: row.currency.trim(),
    amount_minor: row.amount_minor,
    note: `order ${row.order_id} was captured here on ${settlement_date} but no settlement file lists it (yet)`,
  };
}
