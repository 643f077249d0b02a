// The student's permits (overrides) as the student page says them: which rule each lets
// through, for which section, and whether it still counts; and why a waiting place is
// skipped (a rule the student no longer passes).
import type { Permit } from "../console/api";

const WHAT: Record<Permit["kind"], string> = {
  capacity: "a seat in the full section",
  prerequisite: "the prerequisites of",
  time_conflict: "a time conflict with",
  credit_overload: "a credit limit of",
  restriction: "the restrictions of",
  consent: "the instructor's consent for",
  late_add: "a late add of",
};

/** `You may take a seat in the full section CS101-01` / `… a credit limit of 21 this term`. */
export function permitText(p: Permit, sectionName: (id: string) => string): string {
  const what = WHAT[p.kind];
  const target = p.kind === "credit_overload" ? `${p.max_credits ?? "?"} credits this term` : sectionName(p.section_id ?? "");
  const used = p.state === "used" ? " (used)" : "";
  return `Permit: ${what} ${target}${used}`;
}

/** The permits worth showing in a term: active ones, and single-use ones used (the place they allowed). */
export function permitsIn(permits: Permit[], term: string): Permit[] {
  return permits.filter((p) => p.term_id === term && (p.state === "active" || p.state === "used"));
}

const SKIPPED_UNTIL: Record<string, string> = {
  student_on_hold: "the hold on your account is lifted",
  credit_limit_exceeded: "the course fits your credit limit",
  restricted_section: "you meet the section's restrictions",
  prerequisites_not_met: "you meet its prerequisites",
  time_conflict: "it no longer clashes with your schedule",
};

/** How a skipped waiting place reads: "skipped until the hold on your account is lifted (you keep your place)". */
export function skippedText(code: string): string {
  const until = SKIPPED_UNTIL[code] ?? `you meet the registration rules again (${code})`;
  return `skipped until ${until} (you keep your place)`;
}
