import { createHash, timingSafeEqual } from 'node:crypto';
import { parseBearer } from './contracts/credentials.js';

/**
 * Who may read `/metrics` (docs/design.md, "Reliability and security"): anyone while METRICS_TOKEN is
 * unset, else only `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' `authorization` / `bearer_token`
 * setting). Every port that serves `/metrics` — the API's and the realtime port's — asks this one place.
 */
export function metricsAccess(metricsToken: string | undefined): (authorization: string | undefined) => boolean {
  if (!metricsToken) return () => true;
  const expected = digest(metricsToken);
  return (authorization) => {
    const presented = parseBearer(authorization);
    // Compared as digests of equal length, in constant time: the answer's timing says nothing of the token.
    return presented !== null && timingSafeEqual(digest(presented), expected);
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();
