import express from 'express';
import type { z } from 'zod';
import type { Logger } from './logger';
import { parseWith } from './errors';

/**
 * Test-only knobs (webhook delivery, faults, settlement differences) live in memory: env gives
 * the start values, `POST /_sandbox/<name>` changes any subset, `GET` reads them all.
 */
export class KnobState<T extends object> {
  protected current: T;

  constructor(start: T) {
    this.current = { ...start };
  }

  get(): T {
    return { ...this.current };
  }

  set(change: Partial<T>): T {
    this.current = { ...this.current, ...change };
    return this.get();
  }
}

/** GET and POST `/<name>` for one knob set; only the fields sent change (strict schema). */
export function mountKnobRoutes<T extends object>(router: express.Router, name: string, state: KnobState<T>, schema: z.ZodType<Partial<T>>, log: Logger): void {
  router.get(`/${name}`, (_req, res) => {
    res.json(state.get());
  });
  router.post(`/${name}`, (req, res) => {
    const change = parseWith(schema, req.body);
    const defined = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as Partial<T>;
    const knobs = state.set(defined);
    log.info({ knobs }, `${name} knobs changed`);
    res.json(knobs);
  });
}
