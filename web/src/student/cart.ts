// The registration cart: sections a student gathers before registering, kept on the server
// (so it follows the student to another device), grouped by linked set (the items of one
// `group` are submitted as one set), checked without taking seats (preview) and submitted
// in one request, sent with one Idempotency-Key and retried with it while the server is busy.
import { api } from "../api/client";
import { describeProblem } from "./problems";
import type { Component, EnrollOptions, GradingBasis } from "./registration";
import { withIdempotentRetry, type RetryOptions } from "./retry";

export interface CartItem {
  section_id: string;
  course_code: string;
  section_code: string;
  component: Component;
  title: string;
  credits: number;
  /** The course code when the course is taken as a linked set; null for a plain section. */
  group: string | null;
  /** Free seats when the cart was read. */
  seats_left?: number;
  added_at: string;
  /** The credits and grading basis staged to enroll with (null: chosen at the submit). */
  options?: { credits: number; grading_basis: GradingBasis } | null;
}

export interface Cart {
  items: CartItem[];
}

export type Verdict = "would_enroll" | "would_waitlist" | "would_fail";

export interface PreviewItem {
  section_id: string;
  group: string | null;
  verdict: Verdict;
  code: string | null;
  detail: string;
}

export interface SubmitItem {
  section_id: string;
  group: string | null;
  status: "enrolled" | "waitlisted" | "refused";
  code: string | null;
  detail: string | null;
  decision_id: string | null;
  /** 1-based waitlist place (waitlisted only). */
  position?: number | null;
}

const CART = "/api/v1/students/me/cart";
const item = (id: string) => `${CART}/${encodeURIComponent(id)}`;

export const getCart = (token: string) => api<Cart>("GET", CART, { token });
/** Stage a section, with the credits and grading basis to enroll with when chosen. */
export const addToCart = (token: string, sectionId: string, options?: EnrollOptions) =>
  api<Cart>("PUT", item(sectionId), { token, body: options });
export const removeFromCart = (token: string, sectionId: string) => api<Cart>("DELETE", item(sectionId), { token });
export const previewCart = (token: string) => api<{ items: PreviewItem[] }>("POST", `${CART}/preview`, { token });

/** Submit the whole cart: one key for the action, the same key on every retry. */
export function submitCart(token: string, retry: RetryOptions = {}): Promise<{ items: SubmitItem[] }> {
  return withIdempotentRetry(
    (key) => api<{ items: SubmitItem[] }>("POST", `${CART}/submit`, { token, headers: { "Idempotency-Key": key } }),
    retry,
  );
}

/** Items shown together: every member of one linked set, or one plain section. */
export interface CartGroup {
  /** The group (a course code) or the section id of a plain item. */
  key: string;
  /** Several sections taken as one set. */
  linked: boolean;
  items: CartItem[];
}

const ORDER: Component[] = ["lecture", "seminar", "studio", "lab", "recitation"];

/** The cart in display order: groups in the order their first item was added; in a set, the lecture first. */
export function cartGroups(items: CartItem[]): CartGroup[] {
  const groups = new Map<string, CartGroup>();
  const sorted = [...items].sort((a, b) => a.added_at.localeCompare(b.added_at));
  for (const i of sorted) {
    const key = i.group ?? i.section_id;
    let g = groups.get(key);
    if (!g) {
      g = { key, linked: i.group !== null, items: [] };
      groups.set(key, g);
    }
    g.items.push(i);
  }
  for (const g of groups.values()) {
    g.items.sort((a, b) => ORDER.indexOf(a.component) - ORDER.indexOf(b.component) || a.section_code.localeCompare(b.section_code));
  }
  return [...groups.values()];
}

/** The sentence of a refusal code, with the server's detail where it says more. */
function refusal(code: string | null, detail: string | null): string {
  if (!code) return detail || "Refused.";
  return describeProblem({ code, title: detail || code, detail: detail || undefined });
}

/** What the check says for one item. */
export function verdictText(p: Pick<PreviewItem, "verdict" | "code" | "detail">): string {
  switch (p.verdict) {
    case "would_enroll":
      return "Would enroll: a seat is free.";
    case "would_waitlist":
      return "Would join the waitlist: the section is full.";
    default:
      return `Would be refused: ${refusal(p.code, p.detail)}`;
  }
}

/** What the submit did with one item. */
export function outcomeText(s: Pick<SubmitItem, "status" | "code" | "detail" | "position">): string {
  switch (s.status) {
    case "enrolled":
      return "Enrolled.";
    case "waitlisted":
      return s.position ? `On the waitlist, number ${s.position} in line.` : "On the waitlist.";
    default:
      return `Refused, kept in the cart: ${refusal(s.code, s.detail)}`;
  }
}

/** A summary of a submit: "2 enrolled, 1 refused". */
export function submitSummary(items: Pick<SubmitItem, "status">[]): string {
  const n = (st: SubmitItem["status"]) => items.filter((i) => i.status === st).length;
  const parts = [
    n("enrolled") && `${n("enrolled")} enrolled`,
    n("waitlisted") && `${n("waitlisted")} waitlisted`,
    n("refused") && `${n("refused")} refused (still in the cart)`,
  ].filter(Boolean);
  return parts.length ? `Cart submitted: ${parts.join(", ")}.` : "The cart was empty.";
}
