// Who is signed in, per page: the student page and the console keep separate sessions (a
// tab can hold both), each in sessionStorage so a reload keeps it and closing the tab ends it.
import { reactive } from "vue";
import { api } from "./api/client";

export type Role = "student" | "admin" | "operator";

export interface Session {
  token: string | null;
  username: string | null;
  role: Role | null;
  /** Account id (`sub`). */
  id: string | null;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

interface LoginAnswer {
  access_token: string;
  expires_in: number;
}

/** The claims the pages read from the token (the server checks it; we only display). */
export function decodeClaims(token: string): { sub?: string; role?: Role } {
  const part = token.split(".")[1] ?? "";
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

function empty(): Session {
  return { token: null, username: null, role: null, id: null, expiresAt: 0 };
}

/** A reactive session stored under `key`. */
export function useSession(key: "student" | "console") {
  const storageKey = `registrar.session.${key}`;
  const session = reactive<Session>(empty());
  const saved = sessionStorage.getItem(storageKey);
  if (saved) {
    try {
      const s = JSON.parse(saved) as Session;
      if (s.token && s.expiresAt > Date.now()) Object.assign(session, s);
    } catch {
      sessionStorage.removeItem(storageKey);
    }
  }
  async function login(username: string, password: string): Promise<void> {
    const answer = await api<LoginAnswer>("POST", "/api/v1/auth/login", { body: { username, password } });
    const claims = decodeClaims(answer.access_token);
    Object.assign(session, {
      token: answer.access_token,
      username,
      role: claims.role ?? null,
      id: claims.sub ?? null,
      expiresAt: Date.now() + answer.expires_in * 1000,
    });
    sessionStorage.setItem(storageKey, JSON.stringify(session));
  }
  function logout(): void {
    Object.assign(session, empty());
    sessionStorage.removeItem(storageKey);
  }
  return { session, login, logout };
}
