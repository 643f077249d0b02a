// The section search: the filters a student can set, turned into the query of
// GET /api/v1/terms/{term}/sections. Only the filters actually set are sent, since the
// server rejects malformed ones (400 invalid_query).
import type { Day } from "./calendar";

export interface SectionFilters {
  /** Course code prefix or title words. */
  q: string;
  day: Day | "";
  /** HH:MM or "". */
  startsAfter: string;
  endsBefore: string;
  openOnly: boolean;
}

export function emptyFilters(): SectionFilters {
  return { q: "", day: "", startsAfter: "", endsBefore: "", openOnly: false };
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** The query string (without `?`) for one page of results. */
export function sectionQuery(filters: SectionFilters, limit: number, cursor?: string | null): string {
  const p = new URLSearchParams();
  const q = filters.q.trim();
  if (q) p.set("q", q.slice(0, 60));
  if (filters.day) p.set("day", filters.day);
  // <input type="time"> may give HH:MM:SS; the server takes HH:MM.
  const after = filters.startsAfter.slice(0, 5);
  const before = filters.endsBefore.slice(0, 5);
  if (HHMM.test(after)) p.set("starts_after", after);
  if (HHMM.test(before)) p.set("ends_before", before);
  if (filters.openOnly) p.set("open", "true");
  p.set("limit", String(limit));
  if (cursor) p.set("cursor", cursor);
  return p.toString();
}
