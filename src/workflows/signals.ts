import { defineSignal } from '@temporalio/workflow';
import type { DisputeUpdate, OperatorCommand, PaymentMethodAttached, PspChargeUpdate } from '../activities/types';

// Signal definitions on their own, so the API can import them without the workflow modules.

/** A verified PSP webhook about an order's charge (sent by POST /webhooks/psp). */
export const pspUpdateSignal = defineSignal<[PspChargeUpdate]>('pspUpdate');

/** The buyer finished the hosted checkout (a verified `payment_method.attached` webhook). */
export const paymentMethodAttachedSignal = defineSignal<[PaymentMethodAttached]>('paymentMethodAttached');

/** An operator's decision on a `needs_attention` order (POST /v1/ops/orders/:id/retry|cancel, payctl). */
export const operatorCommandSignal = defineSignal<[OperatorCommand]>('operatorCommand');

/** A verified PSP webhook about a dispute (charge.dispute.*), routed to the dispute's workflow. */
export const disputeUpdateSignal = defineSignal<[DisputeUpdate]>('disputeUpdate');
