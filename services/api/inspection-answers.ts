import { badRequest, type Issue } from '../shared/contracts/errors.js';

/**
 * Answers checked against their template (docs/design.md, "Inspections"): every key is an item of
 * the template, every required item is answered, and each answer has its item's type — a check is a
 * boolean, a text a string, a number a finite number, a photo item one or more photos (sent as data
 * URLs in the answers, or as files named after the item in a multipart submission). Stored, a photo
 * item's answer is the list of its photos' ids.
 */

export const ITEM_TYPES = ['check', 'text', 'number', 'photo'] as const;
export type ItemType = (typeof ITEM_TYPES)[number];

export interface TemplateItem {
  key: string;
  label: string;
  type: ItemType;
  required: boolean;
}

export type AnswerValue = boolean | string | number | string[];

/** Multipart field names with a meaning of their own, so never an item key. */
export const RESERVED_KEYS = ['form', 'signature', 'photos'] as const;
export const MAX_TEXT_ANSWER = 10_000;

/** The photos received per item key (their ids, in order). */
export type PhotosByItem = ReadonlyMap<string, readonly string[]>;

export function checkAnswers(items: readonly TemplateItem[], answers: Record<string, unknown>, photos: PhotosByItem): Record<string, AnswerValue> {
  const issues: Issue[] = [];
  const byKey = new Map(items.map((item) => [item.key, item]));
  for (const key of Object.keys(answers)) {
    if (!byKey.has(key)) issues.push({ path: `answers.${key}`, message: 'is not an item of the template' });
  }
  for (const key of photos.keys()) {
    const item = byKey.get(key);
    if (!item) issues.push({ path: `answers.${key}`, message: 'is not an item of the template' });
    else if (item.type !== 'photo') issues.push({ path: `answers.${key}`, message: `is a ${item.type} item, not a photo` });
  }

  const checked: Record<string, AnswerValue> = {};
  for (const item of items) {
    const path = `answers.${item.key}`;
    const value = answers[item.key];
    if (item.type === 'photo') {
      const ids = photos.get(item.key) ?? [];
      if (value !== undefined && value !== null) issues.push({ path, message: 'must be a photo: a data URL, or a file named after the item' });
      else if (ids.length) checked[item.key] = [...ids];
      else if (item.required) issues.push({ path, message: 'is required (a photo)' });
      continue;
    }
    if (value === undefined || value === null) {
      if (item.required) issues.push({ path, message: 'is required' });
      continue;
    }
    const problem = typeProblem(item.type, value);
    if (problem) issues.push({ path, message: problem });
    else checked[item.key] = value as AnswerValue;
  }
  if (issues.length) throw badRequest('the answers do not fit the template', issues);
  return checked;
}

function typeProblem(type: Exclude<ItemType, 'photo'>, value: unknown): string | null {
  switch (type) {
    case 'check':
      return typeof value === 'boolean' ? null : 'must be true or false';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? null : 'must be a number';
    case 'text':
      if (typeof value !== 'string') return 'must be a string';
      return value.length <= MAX_TEXT_ANSWER ? null : `must be at most ${MAX_TEXT_ANSWER} characters`;
  }
}

/**
 * The data-URL photos among the answers, taken out of them: `{"front": "data:image/jpeg;base64,…"}` or
 * a list of such strings. Returns the answers without them and the photos per key, still encoded.
 */
export function takeDataUrlPhotos(answers: Record<string, unknown>): { answers: Record<string, unknown>; photos: Map<string, string[]> } {
  const rest: Record<string, unknown> = {};
  const photos = new Map<string, string[]>();
  for (const [key, value] of Object.entries(answers)) {
    const urls = typeof value === 'string' && isDataUrl(value) ? [value]
      : Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && isDataUrl(v)) ? value as string[]
        : null;
    if (urls) photos.set(key, urls);
    else rest[key] = value;
  }
  return { answers: rest, photos };
}

const isDataUrl = (value: string) => value.startsWith('data:');
