import { condition, workflowInfo } from '@temporalio/workflow';

/** Backoff and history bound of a wait for someone else's decision (a PSP, a bank). */
export interface WaitPlan {
  initial_ms: number;
  max_ms: number;
  history_events_max: number;
}

export interface DecisionWait {
  decided(): boolean;
  /** A signal brought news to act on: ends the current wait at once. */
  woken(): boolean;
  onWoken(): Promise<void>;
  /** No news within the backoff: ask the other side. */
  poll(): Promise<void>;
  /**
   * Told the backoff the wait sleeps on (null once awake). A workflow waiting on several parts
   * continues as new only while every part is idle, so no step is cut in half.
   */
  idle?(wait_ms: number | null): void;
}

export type WaitResult = { decided: true } | { decided: false; wait_ms: number };

/** Past the plan's bound, or when the server suggests it, the history should start over. */
export function historyTooLong(plan: Pick<WaitPlan, 'history_events_max'>): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > plan.history_events_max;
}

/**
 * The one "wait for a signal, else poll" loop (orders, payouts, disputes): a signal wakes it at
 * once; without one it polls, backing off from `initial_ms` (doubling) to `max_ms`, on durable
 * timers. With `own_history` it returns undecided, with the backoff to resume from, once the
 * history outgrows the plan: the caller continues as new with its state. Without it (a part of a
 * larger workflow) it keeps waiting and reports idleness instead.
 */
export async function waitForDecision(w: DecisionWait, plan: WaitPlan, opts: { from_ms?: number; own_history: boolean }): Promise<WaitResult> {
  let wait_ms = opts.from_ms ?? plan.initial_ms;
  while (!w.decided()) {
    if (opts.own_history && historyTooLong(plan)) return { decided: false, wait_ms };
    w.idle?.(wait_ms);
    const woken = await condition(() => w.woken(), wait_ms);
    w.idle?.(null);
    if (woken) {
      await w.onWoken();
    } else {
      wait_ms = Math.min(wait_ms * 2, plan.max_ms);
      await w.poll();
    }
  }
  return { decided: true };
}
