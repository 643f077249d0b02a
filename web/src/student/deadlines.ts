// A term's add, drop and withdrawal deadlines as the student page says them (docs/api.md
// "Add, drop and withdrawal deadlines"): the plain-words line under the appointment, what a
// seat's drop would be now (plain, a withdrawal with a W, or refused), the question asked
// before a withdrawal, and the W list of the schedule. Each deadline is inclusive. The
// page's clock is only advisory: the server judges by the database's.
import { formatTime, type TimeFormat } from "./policy";

/** A term's deadlines (RFC 3339); null while unset. */
export interface Deadlines {
  add_by: string | null;
  drop_by: string | null;
  withdraw_by: string | null;
}

export const NO_DEADLINES: Deadlines = { add_by: null, drop_by: null, withdraw_by: null };

/** A seat left after the term's `drop_by`, as the schedule lists it. */
export interface WithdrawnEntry {
  section_id: string;
  course_code: string;
  section_code: string;
  enrolled_at?: string;
  withdrawn_at: string;
}

const localTime: TimeFormat = (iso) => formatTime(iso);

/** Whether `iso` is past at `now` (ms); the instant itself is still in time. */
function passed(iso: string | null, now: number): boolean {
  if (!iso) return false;
  const at = Date.parse(iso);
  return !Number.isNaN(at) && now > at;
}

/**
 * "Last day to add: Mar 3, 2027, 11:59 PM; drop without a W: …; withdraw (with a W): …." with
 * only the deadlines set, or null when the term sets none. A passed one says so ("passed").
 */
export function deadlinesText(d: Deadlines, now: number, format: TimeFormat = localTime): string | null {
  const parts: string[] = [];
  const when = (iso: string) => `${format(iso)}${passed(iso, now) ? " (passed)" : ""}`;
  if (d.add_by) parts.push(`add: ${when(d.add_by)}`);
  if (d.drop_by) parts.push(`drop without a W: ${when(d.drop_by)}`);
  if (d.withdraw_by) parts.push(`withdraw (with a W): ${when(d.withdraw_by)}`);
  if (parts.length === 0) return null;
  return `Last day to ${parts.join("; ")}.`;
}

/** What dropping a seat would be at `now`: no record, a withdrawal (a W), or refused. */
export type DropKind = "plain" | "withdrawal" | "closed";

export function dropKind(d: Deadlines, now: number): DropKind {
  if (passed(d.withdraw_by, now)) return "closed";
  return passed(d.drop_by, now) ? "withdrawal" : "plain";
}

/** The question before a seat's drop that would be a withdrawal (`what`: "CS101-01", "the CS101 set"). */
export function withdrawQuestion(what: string): string {
  return `The last day to drop without a W has passed: leaving ${what} now is a withdrawal, and your record will keep a W for it.`;
}

/** What the page says after a drop the server answered as a withdrawal. */
export function withdrawnOutcome(what: string): string {
  return `You withdrew from ${what}: your record keeps a W for it.`;
}

/** "CS101-01 · W on Mar 3, 2027, 9:00 AM": one line of the W list. */
export function withdrawnText(w: WithdrawnEntry, format: TimeFormat = localTime): string {
  return `${w.course_code}-${w.section_code} · W on ${format(w.withdrawn_at)}`;
}
