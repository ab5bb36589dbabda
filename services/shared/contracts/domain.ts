/**
 * The platform's enumerations, named once: the API's schemas, the database checks (migrations), the
 * streams and the roles all spell them this way (docs/design.md, "Contracts").
 */

/** Subscription plans; API access (keys, webhooks) needs `unlimited` or the `api` add-on. */
export const PLANS = ['starter', 'team', 'unlimited'] as const;
export type Plan = (typeof PLANS)[number];

/** Add-ons an organization may have on top of its plan: `api` grants API access on any plan. */
export const ADDONS = ['api'] as const;
export type Addon = (typeof ADDONS)[number];

export const hasApiAccess = (plan: Plan, addons: readonly string[]): boolean => plan === 'unlimited' || addons.includes('api');

/** What a device is: a GPS tracker (fixes) or an attendance clock (punches). */
export const DEVICE_KINDS = ['tracker', 'attendance'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** A `site` verifies punches; crossing a `restricted` fence also raises a breach; a `zone` only enters and exits. */
export const FENCE_KINDS = ['site', 'restricted', 'zone'] as const;
export type FenceKind = (typeof FENCE_KINDS)[number];

export const PUNCH_KINDS = ['in', 'out'] as const;
export type PunchKind = (typeof PUNCH_KINDS)[number];

/** A work order's status (the state machine: services/api/work-order-states.ts). */
export const WORK_ORDER_STATUSES = ['draft', 'scheduled', 'assigned', 'en_route', 'in_progress', 'on_hold', 'completed', 'cancelled'] as const;
export type WorkOrderStatus = (typeof WORK_ORDER_STATUSES)[number];

export const WORK_ORDER_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type WorkOrderPriority = (typeof WORK_ORDER_PRIORITIES)[number];

/** An asset's mechanical state. */
export const ASSET_STATES = ['operational', 'needs_service', 'under_repair', 'out_of_service'] as const;
export type AssetState = (typeof ASSET_STATES)[number];
