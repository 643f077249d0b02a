// Pure rules of the console's policy forms: reserved-seat pools and restrictions of a
// section, a student's majors, program and cohort. The forms hold text as typed; these turn
// it into the API's bodies (values upper case, times RFC 3339) and say what the server
// would refuse (a bad value, too many pools, more reserved seats than the section has), so
// the form can tell before sending. The server decides.
import { formatTime, isReserving, whoText, type TimeFormat } from "../student/policy";
import type { PolicyAttribute, PoolSpec, ReservedPool, Restriction } from "./api";

export const ATTRIBUTES: readonly PolicyAttribute[] = ["major", "program", "cohort", "standing"];
/** The server's limits. */
export const MAX_POOLS = 10;
export const MAX_MAJORS = 5;
/** At most this many restrictions per section, and values per restriction. */
export const MAX_RESTRICTIONS = 10;
/** One attribute value: 1–16 of A-Z 0-9 _ - (after upper-casing, as the server does). */
const VALUE = /^[A-Z0-9_-]{1,16}$/;

/** A pool as the form holds it: `release` is a `datetime-local` value, "" for none. */
export interface PoolDraft {
  attribute: PolicyAttribute;
  value: string;
  seats: number;
  release: string;
}

/** A restriction as the form holds it: `values` comma-separated as typed. */
export interface RestrictionDraft {
  attribute: PolicyAttribute;
  mode: "include" | "exclude";
  values: string;
}

export const emptyPool = (): PoolDraft => ({ attribute: "major", value: "", seats: 1, release: "" });
export const emptyRestriction = (): RestrictionDraft => ({ attribute: "major", mode: "include", values: "" });

/** A value as the server stores it: trimmed, upper case. */
export function canonicalValue(text: string): string {
  return text.trim().toUpperCase();
}

export function validValue(value: string): boolean {
  return VALUE.test(value);
}

/** `"cs, Math ,,cs"` → `["CS", "MATH"]`: commas or spaces between values, blanks and repeats dropped. */
export function parseValues(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map(canonicalValue).filter((v) => v.length > 0))];
}

/** A `datetime-local` value (the admin's local time) → RFC 3339 UTC; "" → null. */
export function instantOf(local: string): string | null {
  if (!local) return null;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

/** RFC 3339 → a `datetime-local` value in local time (to minutes); null → "". */
export function localInput(iso: string | null): string {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const two = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
}

/** The pools of a section as drafts, for its editor. */
export function poolDrafts(pools: readonly Pick<ReservedPool, "attribute" | "value" | "seats" | "release_at">[]): PoolDraft[] {
  return pools.map((p) => ({ attribute: p.attribute, value: p.value, seats: p.seats, release: localInput(p.release_at) }));
}

/** The body's `reserved`. */
export function poolsBody(drafts: readonly PoolDraft[]): PoolSpec[] {
  return drafts.map((d) => ({ attribute: d.attribute, value: canonicalValue(d.value), seats: d.seats, release_at: instantOf(d.release) }));
}

/** Why the server would refuse these pools for a section of `capacity` seats, or null. */
export function poolsProblem(drafts: readonly PoolDraft[], capacity: number): string | null {
  if (drafts.length > MAX_POOLS) return `At most ${MAX_POOLS} reserved pools.`;
  for (const [i, d] of drafts.entries()) {
    const n = i + 1;
    if (!validValue(canonicalValue(d.value))) return `Pool ${n}: the value must be 1–16 letters, digits, _ or -.`;
    if (!Number.isInteger(d.seats) || d.seats < 0) return `Pool ${n}: the seats must be a whole number, 0 or more.`;
    if (d.release && instantOf(d.release) === null) return `Pool ${n}: the release time is not a time.`;
  }
  const seen = new Set<string>();
  for (const d of drafts) {
    const key = `${d.attribute} ${canonicalValue(d.value)}`;
    if (seen.has(key)) return `Two pools for ${key}: one pool per value.`;
    seen.add(key);
  }
  const total = drafts.reduce((sum, d) => sum + (Number.isInteger(d.seats) ? d.seats : 0), 0);
  if (total > capacity) return `The pools reserve ${total} seats, more than the section's ${capacity}.`;
  return null;
}

/** The body's `restrictions`: rows with no value left out. */
export function restrictionsBody(drafts: readonly RestrictionDraft[]): Restriction[] {
  return drafts
    .map((d) => ({ attribute: d.attribute, mode: d.mode, values: parseValues(d.values) }))
    .filter((r) => r.values.length > 0);
}

/** Why the server would refuse these restrictions, or null. */
export function restrictionsProblem(drafts: readonly RestrictionDraft[]): string | null {
  if (drafts.length > MAX_RESTRICTIONS) return `At most ${MAX_RESTRICTIONS} restrictions.`;
  for (const [i, d] of drafts.entries()) {
    const values = parseValues(d.values);
    const bad = values.filter((v) => !validValue(v));
    if (bad.length) return `Restriction ${i + 1}: ${bad.join(", ")} is not a value (1–16 letters, digits, _ or -).`;
    if (values.length > MAX_RESTRICTIONS) return `Restriction ${i + 1}: at most ${MAX_RESTRICTIONS} values.`;
  }
  return null;
}

/** A student's attributes as the form holds them. */
export interface AttributesDraft {
  majors: string;
  program: string;
  cohort: string;
}

export function attributesDraft(a: { majors?: string[]; program?: string | null; cohort?: string | null }): AttributesDraft {
  return { majors: (a.majors ?? []).join(", "), program: a.program ?? "", cohort: a.cohort ?? "" };
}

/** The PATCH body: a blank program or cohort clears it (null). */
export function attributesBody(d: AttributesDraft): { majors: string[]; program: string | null; cohort: string | null } {
  const one = (text: string) => (canonicalValue(text) === "" ? null : canonicalValue(text));
  return { majors: parseValues(d.majors), program: one(d.program), cohort: one(d.cohort) };
}

/** Why the server would refuse these attributes, or null. */
export function attributesProblem(d: AttributesDraft): string | null {
  const body = attributesBody(d);
  if (body.majors.length > MAX_MAJORS) return `At most ${MAX_MAJORS} majors.`;
  const bad = [...body.majors, body.program, body.cohort].filter((v): v is string => v !== null && !validValue(v));
  if (bad.length) return `${bad.join(", ")}: a value is 1–16 letters, digits, _ or -.`;
  return null;
}

/** "1 seat reserved for CS majors": a pool as a notice says it. */
export function poolPhrase(p: Pick<PoolSpec, "attribute" | "value" | "seats">): string {
  return `${p.seats} ${p.seats === 1 ? "seat" : "seats"} reserved for ${whoText(p.attribute, p.value)}`;
}

/** "CS majors: 1 of 2 taken, until Mar 3, 2027, 9:00 AM": a pool as the section list shows it. */
export function poolRow(p: ReservedPool, now: number, format: TimeFormat = (iso) => formatTime(iso)): string {
  const head = `${whoText(p.attribute, p.value)}: ${p.taken} of ${p.seats} taken`;
  if (!isReserving(p, now)) return `${head}, released`;
  return p.release_at ? `${head}, until ${format(p.release_at)}` : head;
}

