import type { z } from 'zod';
import type { PaymentResource as PaymentSchema, RefundResource as RefundSchema } from '../../src/api/schemas';
import type { PaymentResource } from '../../src/services/payments';
import type { RefundResource } from '../../src/services/refunds';

/**
 * The services build the answers as plain types (they may not import the API layer); the API
 * documents them as zod schemas. Both directions must hold, or a field added on one side and not
 * the other would reach merchants undocumented. Checked by the compiler (npm run typecheck).
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const payment_agrees: Same<PaymentResource, z.output<typeof PaymentSchema>> = true;
const refund_agrees: Same<RefundResource, z.output<typeof RefundSchema>> = true;

it('the services\' answer types are the documented schemas', () => {
  expect([payment_agrees, refund_agrees]).toEqual([true, true]);
});
