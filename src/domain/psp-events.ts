/**
 * Fixed lists of the PSP webhook inbox, declared once: the webhook router stores a route per event,
 * the sweeper applies the routes that signal a workflow, and payctl filters by route.
 */

/** Where a received PSP event goes: the workflow it signals, or why it signals none. */
export const PSP_EVENT_ROUTES = ['order', 'payment', 'dispute', 'unknown', 'ignored'] as const;
export type PspEventRoute = (typeof PSP_EVENT_ROUTES)[number];

/** Routes whose events signal a workflow (and are applied, or retried by the sweeper until they are). */
export const APPLIED_PSP_EVENT_ROUTES = ['order', 'payment', 'dispute'] as const satisfies readonly PspEventRoute[];
export type AppliedPspEventRoute = (typeof APPLIED_PSP_EVENT_ROUTES)[number];

/** Routes of events that signal nothing: `unknown` names no object here (kept for operators), `ignored` needs nothing done. */
export type SkippedPspEventRoute = Exclude<PspEventRoute, AppliedPspEventRoute>;

/** Charge news, routed to the order's workflow. */
export const CHARGE_EVENT_TYPES = ['charge.succeeded', 'charge.failed', 'charge.pending', 'charge.requires_action'] as const;
/** Dispute news, routed to the dispute's workflow. */
export const DISPUTE_EVENT_TYPES = ['charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed'] as const;
/** A buyer's payment method attached at checkout, routed to the payment's workflow. */
export const PAYMENT_METHOD_EVENT_TYPE = 'payment_method.attached';
