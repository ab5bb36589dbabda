import type { WorkOrderStatus } from '../shared/contracts/domain.js';
import { badRequest, conflict, type ApiError } from '../shared/contracts/errors.js';

/**
 * The work order state machine (docs/design.md, "Work orders"):
 *
 *   draft ──(a window)──▶ scheduled ──assign──▶ assigned ──dispatch──▶ en_route ──start──▶ in_progress ──complete──▶ completed
 *     └──────────────assign──────────────────────▲   └───────────────start──────────────────────▲
 *   hold: scheduled | assigned | en_route | in_progress ──▶ on_hold ──resume──▶ the status it was held from
 *   cancel: any open status ──▶ cancelled
 *
 * A new order is `draft`, or `scheduled` when it has a window (`scheduled_start`); a draft or scheduled
 * order follows its window when edited. `completed` and `cancelled` are final. Pure: no I/O.
 */

export const WORK_ORDER_ACTIONS = ['assign', 'dispatch', 'start', 'hold', 'resume', 'complete', 'cancel'] as const;
export type WorkOrderAction = (typeof WORK_ORDER_ACTIONS)[number];

/** Where each action may start, and where it leads (`resume` leads back to where the order was held). */
export const MOVES: Record<WorkOrderAction, { from: readonly WorkOrderStatus[]; to: WorkOrderStatus | 'held_from' }> = {
  assign: { from: ['draft', 'scheduled'], to: 'assigned' },
  dispatch: { from: ['assigned'], to: 'en_route' },
  start: { from: ['assigned', 'en_route'], to: 'in_progress' },
  hold: { from: ['scheduled', 'assigned', 'en_route', 'in_progress'], to: 'on_hold' },
  resume: { from: ['on_hold'], to: 'held_from' },
  complete: { from: ['in_progress'], to: 'completed' },
  cancel: { from: ['draft', 'scheduled', 'assigned', 'en_route', 'in_progress', 'on_hold'], to: 'cancelled' },
};

/** Statuses in which the assignee may be changed by an edit (a reassignment). */
const REASSIGNABLE: readonly WorkOrderStatus[] = ['assigned', 'en_route', 'in_progress', 'on_hold'];

export type HeldFrom = 'scheduled' | 'assigned' | 'en_route' | 'in_progress';

export interface StatusState {
  status: WorkOrderStatus;
  held_from: HeldFrom | null;
}

/** The status a new or edited draft/scheduled order has: it follows its window. */
export const plannedStatus = (scheduledStart: unknown): 'draft' | 'scheduled' => (scheduledStart ? 'scheduled' : 'draft');

export const illegalMove = (action: string, status: WorkOrderStatus): ApiError =>
  conflict(`cannot ${action} a work order that is ${status}`, [{ path: 'status', message: `is ${status}` }]);

/** Where `action` takes an order in `state`; 409 naming the current status when it may not. */
export function applyAction(action: WorkOrderAction, state: StatusState): StatusState {
  const move = MOVES[action];
  if (!move.from.includes(state.status)) throw illegalMove(action, state.status);
  if (move.to === 'held_from') return { status: state.held_from ?? 'assigned', held_from: null };
  if (move.to === 'on_hold') return { status: 'on_hold', held_from: state.status as HeldFrom };
  return { status: move.to, held_from: null };
}

export interface EditPlan {
  next: StatusState;
  /** The action the edit amounts to, named in the history (`updated` when the status stays). */
  action: WorkOrderAction | 'updated' | 'reassigned' | 'unassigned' | 'scheduled' | 'unscheduled';
  /** The assignee changed to someone (an assignment or a reassignment): `work_order.assigned`. */
  assigned: boolean;
}

/**
 * What a PATCH does to the status. `status` in an edit moves along the same machine as the actions
 * (409 when that move is illegal; `completed` needs the sign-off of `…/complete`, so it is 400 there);
 * `assignee_id` assigns a draft or scheduled order, reassigns an order under way, and unassigns an
 * assigned one; a draft or scheduled order follows its window.
 */
export function planEdit(
  current: StatusState & { assignee_id: string | null },
  edit: { status?: WorkOrderStatus; assignee_id?: string | null; scheduledStartAfter: unknown },
): EditPlan {
  const { status } = current;
  const assigneeChanged = edit.assignee_id !== undefined && edit.assignee_id !== current.assignee_id;
  const target = edit.status ?? null;

  if (target && target !== status) {
    switch (target) {
      case 'completed':
        applyAction('complete', current);
        throw badRequest('completing a work order takes a sign-off: POST /v1/work-orders/{id}/complete', [
          { path: 'status', message: 'use the complete action' },
        ]);
      case 'assigned': {
        if (status === 'on_hold' && current.held_from === 'assigned') return { next: applyAction('resume', current), action: 'resume', assigned: assigneeChanged };
        const next = applyAction('assign', current);
        if (!(edit.assignee_id ?? current.assignee_id)) {
          throw badRequest('an assigned work order needs an assignee', [{ path: 'assignee_id', message: 'is required to assign' }]);
        }
        return { next, action: 'assign', assigned: true };
      }
      case 'draft':
      case 'scheduled': {
        if (status === 'on_hold' && current.held_from === target) return { next: applyAction('resume', current), action: 'resume', assigned: false };
        if (status !== 'draft' && status !== 'scheduled') throw illegalMove(`move to ${target}`, status);
        if (plannedStatus(edit.scheduledStartAfter) !== target) {
          throw badRequest(target === 'scheduled' ? 'a scheduled work order needs scheduled_start' : 'a draft has no window: clear scheduled_start',
            [{ path: 'scheduled_start', message: target === 'scheduled' ? 'is required' : 'must be null' }]);
        }
        return { next: { status: target, held_from: null }, action: target === 'scheduled' ? 'scheduled' : 'unscheduled', assigned: false };
      }
      default: {
        const action = actionTo(target, current);
        const next = applyAction(action, current);
        if (next.status !== target) throw illegalMove(`move to ${target}`, status);
        return { next, action, assigned: assigneeChanged && REASSIGNABLE.includes(next.status) };
      }
    }
  }

  if (assigneeChanged) {
    if (status === 'draft' || status === 'scheduled') {
      // Setting no one on an unassigned order changes nothing.
      if (edit.assignee_id === null) return { next: { status, held_from: null }, action: 'updated', assigned: false };
      return { next: applyAction('assign', current), action: 'assign', assigned: true };
    }
    if (edit.assignee_id === null) {
      if (status !== 'assigned') throw illegalMove('unassign', status);
      return { next: { status: plannedStatus(edit.scheduledStartAfter), held_from: null }, action: 'unassigned', assigned: false };
    }
    if (!REASSIGNABLE.includes(status)) throw illegalMove('reassign', status);
    return { next: { status, held_from: current.held_from }, action: 'reassigned', assigned: true };
  }

  if (status === 'draft' || status === 'scheduled') {
    const planned = plannedStatus(edit.scheduledStartAfter);
    if (planned !== status) return { next: { status: planned, held_from: null }, action: planned === 'scheduled' ? 'scheduled' : 'unscheduled', assigned: false };
  }
  return { next: { status, held_from: current.held_from }, action: 'updated', assigned: false };
}

/** The action that leads to `target` from where the order is. */
function actionTo(target: WorkOrderStatus, current: StatusState): WorkOrderAction {
  switch (target) {
    case 'en_route':
      return current.status === 'on_hold' ? 'resume' : 'dispatch';
    case 'in_progress':
      return current.status === 'on_hold' ? 'resume' : 'start';
    case 'on_hold':
      return 'hold';
    case 'cancelled':
      return 'cancel';
    default:
      return 'assign';
  }
}
