import { describe, expect, it } from 'vitest';
import { ApiError } from '../../services/shared/contracts/errors.js';
import { WORK_ORDER_STATUSES, type WorkOrderStatus } from '../../services/shared/contracts/domain.js';
import { applyAction, MOVES, planEdit, WORK_ORDER_ACTIONS, type StatusState } from '../../services/api/work-order-states.js';

/** The state machine as a table: every action from every status is either its documented move or a 409. */
const LEGAL: Record<string, Partial<Record<WorkOrderStatus, WorkOrderStatus>>> = {
  assign: { draft: 'assigned', scheduled: 'assigned' },
  dispatch: { assigned: 'en_route' },
  start: { assigned: 'in_progress', en_route: 'in_progress' },
  hold: { scheduled: 'on_hold', assigned: 'on_hold', en_route: 'on_hold', in_progress: 'on_hold' },
  resume: { on_hold: 'en_route' },
  complete: { in_progress: 'completed' },
  cancel: { draft: 'cancelled', scheduled: 'cancelled', assigned: 'cancelled', en_route: 'cancelled', in_progress: 'cancelled', on_hold: 'cancelled' },
};

const state = (status: WorkOrderStatus): StatusState => ({ status, held_from: status === 'on_hold' ? 'en_route' : null });

describe('work order moves', () => {
  for (const action of WORK_ORDER_ACTIONS) {
    for (const status of WORK_ORDER_STATUSES) {
      const to = LEGAL[action]![status];
      it(`${action} from ${status}: ${to ?? '409'}`, () => {
        if (to) {
          expect(applyAction(action, state(status)).status).toBe(to);
        } else {
          let error: unknown;
          try {
            applyAction(action, state(status));
          } catch (err) {
            error = err;
          }
          expect(error).toBeInstanceOf(ApiError);
          expect(error).toMatchObject({ code: 'conflict', issues: [{ path: 'status', message: `is ${status}` }] });
        }
      });
    }
  }

  it('hold remembers where it came from, and resume goes back there', () => {
    for (const from of MOVES.hold.from) {
      const held = applyAction('hold', { status: from, held_from: null });
      expect(held).toEqual({ status: 'on_hold', held_from: from });
      expect(applyAction('resume', held)).toEqual({ status: from, held_from: null });
    }
  });

  it('edits: a draft follows its window; an assignee assigns, reassigns or unassigns', () => {
    const draft = { status: 'draft' as const, held_from: null, assignee_id: null };
    expect(planEdit(draft, { scheduledStartAfter: '2025-01-01T00:00:00Z' })).toMatchObject({ next: { status: 'scheduled' }, action: 'scheduled' });
    expect(planEdit(draft, { scheduledStartAfter: null })).toMatchObject({ next: { status: 'draft' }, action: 'updated' });
    expect(planEdit(draft, { assignee_id: 'e1', scheduledStartAfter: null })).toMatchObject({ next: { status: 'assigned' }, assigned: true });
    const working = { status: 'in_progress' as const, held_from: null, assignee_id: 'e1' };
    expect(planEdit(working, { assignee_id: 'e2', scheduledStartAfter: null })).toMatchObject({ next: { status: 'in_progress' }, action: 'reassigned', assigned: true });
    expect(() => planEdit(working, { assignee_id: null, scheduledStartAfter: null })).toThrow(/cannot unassign a work order that is in_progress/);
    const assigned = { status: 'assigned' as const, held_from: null, assignee_id: 'e1' };
    expect(planEdit(assigned, { assignee_id: null, scheduledStartAfter: 'x' })).toMatchObject({ next: { status: 'scheduled' }, action: 'unassigned' });
    expect(() => planEdit(assigned, { status: 'completed', scheduledStartAfter: null })).toThrow(/cannot complete a work order that is assigned/);
  });
});
