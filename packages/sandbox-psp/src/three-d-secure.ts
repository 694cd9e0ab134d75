import express, { type Request, type Response } from 'express';
import type { Deps } from './app';
import { escapeHtml, page, sendHtml } from './checkout';
import type { NewEvent } from './events';
import { authenticateCharge, getCharge, type AuthenticationAction, type StoredCharge } from './store';
import { enqueueEvent } from './webhooks';

/**
 * The buyer's 3-D Secure challenge for a `requires_action` charge: GET/POST /3ds/:charge_id,
 * the charge's next_action.redirect_url. No API key (the buyer's browser has none). The charge
 * is decided by a click here and nothing else; the review scheduler only settles `pending`.
 */

function chargeSummary(charge: StoredCharge): string {
  return `<p>Charge <code>${escapeHtml(charge.id)}</code>: ${charge.amount_minor.toString()} ` +
    `${escapeHtml(charge.currency)} (minor units), reference ${escapeHtml(charge.order_reference)}.</p>`;
}

/** The form needs only the id, so a rejected submit can be answered without a lookup. */
function challengeForm(charge_id: string): string {
  const buttons =
    '<button type="submit" id="approve" name="action" value="approve">Approve</button> ' +
    '<button type="submit" id="fail" name="action" value="fail">Fail authentication</button>';
  return `<form method="post" action="/3ds/${escapeHtml(charge_id)}">${buttons}</form>`;
}

function challengePage(charge: StoredCharge): string {
  const intro = '<p>Sandbox bank: approve or fail the 3-D Secure check for this payment.</p>';
  return page('3-D Secure authentication', `${intro}${chargeSummary(charge)}${challengeForm(charge.id)}`);
}

function badActionPage(charge_id: string): string {
  const error = '<p class="error" role="alert">Choose Approve or Fail authentication.</p>';
  return page('3-D Secure authentication', `${error}${challengeForm(charge_id)}`);
}

function completePage(charge: StoredCharge): string {
  const outcome = charge.status === 'succeeded' ? 'was authenticated' : 'failed authentication';
  return page('Authentication complete', `${chargeSummary(charge)}<p>The payment ${outcome}. You can close this page.</p>`);
}

function decidedPage(charge: StoredCharge): string {
  const body = `${chargeSummary(charge)}<p>No 3-D Secure authentication is waiting: the charge is ${escapeHtml(charge.status)}.</p>`;
  return page('Nothing to authenticate', body);
}

function notFoundPage(): string {
  return page('Charge not found', '<p>No such charge.</p>');
}

/** Exactly one `action` field, approve or fail; a repeated field parses as an array and fails. */
function readAction(body: unknown): AuthenticationAction | null {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['action'] : undefined;
  return value === 'approve' || value === 'fail' ? value : null;
}

function showChallenge(deps: Deps) {
  return async (req: Request<{ charge_id: string }>, res: Response): Promise<void> => {
    const charge = await getCharge(deps.db, req.params.charge_id);
    if (charge === null) return sendHtml(res, 404, notFoundPage());
    if (charge.status !== 'requires_action') return sendHtml(res, 200, decidedPage(charge));
    sendHtml(res, 200, challengePage(charge));
  };
}

function submitChallenge(deps: Deps, to_event: (charge: StoredCharge) => NewEvent) {
  return async (req: Request<{ charge_id: string }>, res: Response): Promise<void> => {
    const { charge_id } = req.params;
    const action = readAction(req.body);
    if (action === null) return sendHtml(res, 400, badActionPage(charge_id));
    // The status change and its event commit together, as for a review decision.
    const result = await authenticateCharge(deps.db, charge_id, action, async (trx, charge) => {
      await enqueueEvent(trx, deps, to_event(charge));
    });
    if (result.kind === 'missing') return sendHtml(res, 404, notFoundPage());
    if (result.kind === 'already_decided') return sendHtml(res, 409, decidedPage(result.charge));
    const log = (res.locals['log'] as typeof deps.log | undefined) ?? deps.log;
    log.info({ charge_id, action, status: result.charge.status }, '3-D Secure decided');
    sendHtml(res, 200, completePage(result.charge));
  };
}

/** Mounted at /3ds behind a urlencoded body parser (app.ts). */
export function createThreeDSecurePages(deps: Deps, to_event: (charge: StoredCharge) => NewEvent): express.Router {
  const router = express.Router();
  router.get('/:charge_id', showChallenge(deps));
  router.post('/:charge_id', submitChallenge(deps, to_event));
  return router;
}
