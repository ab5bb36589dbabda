/** The dispatcher's credentials for this tab: a session token (JWT) or an API key. */
export interface Session {
  token: string;
  kind: 'session' | 'api_key';
  /** ISO time the session token ends; null for API keys. */
  expiresAt: string | null;
}

const KEY = 'fieldops.live.session';

export function loadSession(): Session | null {
  try {
    const session = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    if (!session?.token) return null;
    if (session.expiresAt && Date.parse(session.expiresAt) <= Date.now()) {
      clearSession();
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
