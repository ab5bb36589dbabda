import type { RouteOptions } from 'fastify';

type RouteHookName = 'onRequest' | 'preHandler' | 'onSend';

/**
 * Puts `hook` on one route (from an `onRoute` hook), before (`first`) or after (`last`) the route's own hooks
 * of that kind. Route hooks run after the app's: a plugin that gives only some routes a hook pays nothing on
 * the others, and keeps their order in its own hands.
 */
export function addRouteHook(route: RouteOptions, name: RouteHookName, hook: (...args: never[]) => unknown, at: 'first' | 'last'): void {
  const options = route as unknown as Record<string, unknown>;
  const existing = options[name];
  const own = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  options[name] = at === 'first' ? [hook, ...own] : [...own, hook];
}
