import { conflict } from '../shared/contracts/errors.js';

/**
 * The quote pipeline (DESIGN section 6; docs/design.md, "Quotes"):
 *
 *   draft ──send──▶ sent ──view──▶ viewed
 *                    │  ╲            │
 *                    │   accept / reject (from sent or viewed)
 *                    ▼                ▼
 *           expired (an open quote — sent or viewed — whose valid_until has passed)
 *
 * `accepted`, `rejected` and `expired` are final for the revision; an amendment (a new revision)
 * starts again at `draft`. Only a draft is edited in place or deleted.
 */

export const QUOTE_STAGES = ['draft', 'sent', 'viewed', 'accepted', 'rejected', 'expired'] as const;
export type QuoteStage = (typeof QUOTE_STAGES)[number];

export type QuoteAction = 'send' | 'view' | 'accept' | 'reject' | 'edit' | 'delete' | 'convert';

/** The stages each action may start from, and where it leads (null: the stage stays). */
const ACTIONS: Record<QuoteAction, { from: readonly QuoteStage[]; to: QuoteStage | null }> = {
  send: { from: ['draft'], to: 'sent' },
  view: { from: ['sent', 'viewed'], to: 'viewed' },
  accept: { from: ['sent', 'viewed'], to: 'accepted' },
  reject: { from: ['sent', 'viewed'], to: 'rejected' },
  edit: { from: ['draft'], to: null },
  delete: { from: ['draft'], to: null },
  convert: { from: ['accepted'], to: null },
};

/** Open quotes: sent to the client and awaiting an answer; they expire when their date passes. */
export const OPEN_STAGES: readonly QuoteStage[] = ['sent', 'viewed'];

/**
 * The stage a quote is in now: an open quote past its `valid_until` is expired even before the expiry
 * job has written it down (the API answers and acts on this, never on a stale `sent`).
 */
export function effectiveStage(stage: QuoteStage, validUntil: Date | null, now: Date = new Date()): QuoteStage {
  return OPEN_STAGES.includes(stage) && validUntil !== null && validUntil.getTime() <= now.getTime() ? 'expired' : stage;
}

/** The stage after `action`, or 409 `conflict` naming the stage it cannot be taken from. */
export function nextStage(action: QuoteAction, stage: QuoteStage): QuoteStage {
  const rule = ACTIONS[action];
  if (!rule.from.includes(stage)) {
    const hint = stage === 'expired' ? ' (make a new revision to offer it again)'
      : action === 'edit' ? ' (only a draft is edited; amend it with POST /v1/quotes/{id}/revisions)' : '';
    throw conflict(`a ${stage} quote cannot be ${PAST[action]}${hint}`, [
      { path: 'stage', message: `is ${stage}; ${action} needs ${rule.from.join(' or ')}` },
    ]);
  }
  return rule.to ?? stage;
}

const PAST: Record<QuoteAction, string> = {
  send: 'sent', view: 'viewed', accept: 'accepted', reject: 'rejected', edit: 'edited', delete: 'deleted', convert: 'converted',
};
