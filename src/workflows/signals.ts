import { defineSignal } from '@temporalio/workflow';
import type { PaymentMethodAttached, PspChargeUpdate } from '../activities/types';

// Signal definitions on their own, so the API can import them without the workflow modules.

/** A verified PSP webhook about an order's charge (sent by POST /webhooks/psp). */
export const pspUpdateSignal = defineSignal<[PspChargeUpdate]>('pspUpdate');

/** The buyer finished the hosted checkout (a verified `payment_method.attached` webhook). */
export const paymentMethodAttachedSignal = defineSignal<[PaymentMethodAttached]>('paymentMethodAttached');
