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
