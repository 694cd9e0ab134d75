/**
 * Invariant checks. A failed assertion is a bug found early, never an error path to recover
 * from: it throws a plain Error that the API maps to 500 and the worker lets fail the task.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
