// Pure rules of the console's deadlines form: a term's add, drop and withdrawal deadlines
// held as `datetime-local` text (empty: unset), turned into the PUT body (RFC 3339, null for
// unset) and checked for the server's one rule across them: those given come in order,
// add ≤ drop ≤ withdraw (equal allowed). The server decides.
import type { Deadlines } from "../student/deadlines";
import { instantOf, localInput } from "./policy";

export type { Deadlines };

/** The form's text, one `datetime-local` value per deadline ("" for unset). */
export interface DeadlinesDraft {
  add_by: string;
  drop_by: string;
  withdraw_by: string;
}

const KEYS = ["add_by", "drop_by", "withdraw_by"] as const;
const NAMES: Record<(typeof KEYS)[number], string> = {
  add_by: "the last day to add",
  drop_by: "the last day to drop without a W",
  withdraw_by: "the last day to withdraw",
};

/** The stored deadlines as the form shows them (local time, to the minute). */
export function deadlinesDraft(d: Deadlines): DeadlinesDraft {
  return { add_by: localInput(d.add_by), drop_by: localInput(d.drop_by), withdraw_by: localInput(d.withdraw_by) };
}

/**
 * The PUT body. A deadline whose text is unchanged from `stored` keeps its stored instant
 * (the form shows minutes only; saving another one must not cut its seconds).
 */
export function deadlinesBody(draft: DeadlinesDraft, stored: Deadlines | null = null): Deadlines {
  const one = (k: (typeof KEYS)[number]) => {
    const kept = stored?.[k] ?? null;
    if (kept && localInput(kept) === draft[k]) return kept;
    return instantOf(draft[k]);
  };
  return { add_by: one("add_by"), drop_by: one("drop_by"), withdraw_by: one("withdraw_by") };
}

/** Why the server would refuse these deadlines, or null: a time that is not one, or two out of order. */
export function deadlinesProblem(draft: DeadlinesDraft): string | null {
  for (const k of KEYS) {
    if (draft[k] && instantOf(draft[k]) === null) return `${capital(NAMES[k])} is not a time.`;
  }
  const body = deadlinesBody(draft);
  for (const [i, a] of KEYS.entries()) {
    for (const b of KEYS.slice(i + 1)) {
      const x = body[a];
      const y = body[b];
      if (x && y && Date.parse(y) < Date.parse(x)) return `${capital(NAMES[b])} must not be before ${NAMES[a]}.`;
    }
  }
  return null;
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
