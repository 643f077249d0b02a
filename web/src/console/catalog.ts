// Pure rules of the console's catalog forms (docs/api.md "Linked sections", "Waitlist
// offers"): the order of a course's components (primary first), comma-separated course
// codes, which sections a section may link to, how links read (by section code), and a
// section's waitlist mode and offer window. The server decides; these only keep the forms
// from offering what it would refuse.
import { durationText } from "../student/offers";
import type { Component, GradingBasis, NewSection, Section, WaitlistMode } from "./api";

/** The components a course may require, in the order the forms list them. */
export const COMPONENTS: readonly Component[] = ["lecture", "lab", "recitation", "seminar", "studio"];
/** At most this many components per course (the server's limit). */
export const MAX_COMPONENTS = 4;

/** The chosen components with `primary` first, the rest in the forms' order; `primary` counts only if chosen. */
export function orderComponents(chosen: readonly Component[], primary: Component | null): Component[] {
  const rest = COMPONENTS.filter((c) => chosen.includes(c));
  if (primary === null || !rest.includes(primary)) return rest;
  return [primary, ...rest.filter((c) => c !== primary)];
}

/** `"MATH2413, phys 2425 ,"` → `["MATH2413", "phys 2425"]`: split on commas (a code may hold a space), blanks dropped. */
export function parseCodes(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The components a new section of the course may be: the course's own, or all when it has none or they are unknown. */
export function componentChoices(courseComponents: readonly Component[] | null): readonly Component[] {
  return courseComponents && courseComponents.length > 0 ? courseComponents : COMPONENTS;
}

/** The primary component of a course: its first, or `lecture` (the default) when it has none. */
export function primaryOf(courseComponents: readonly Component[]): Component {
  return courseComponents[0] ?? "lecture";
}

/**
 * The sections that a section of `component` may link to: of the same course and term (the
 * caller passes those), of another component, one side of the link the course's primary.
 * So a lecture (primary) links to the labs and recitations, a lab to the lectures.
 */
export function linkCandidates<S extends Pick<Section, "id" | "component" | "section_code">>(
  component: Component,
  courseComponents: readonly Component[],
  courseSections: readonly S[],
  self: string | null = null,
): S[] {
  const primary = primaryOf(courseComponents);
  return courseSections
    .filter((s) => s.id !== self && s.component !== component)
    .filter((s) => component === primary || s.component === primary)
    .slice()
    .sort((a, b) => a.section_code.localeCompare(b.section_code));
}

/** How a section is named among its course's: `02 (lab)`. */
export function sectionLabel(s: Pick<Section, "section_code" | "component">): string {
  return `${s.section_code} (${s.component})`;
}

/** The links of a section by section code, in code order; an id not among `known` reads as its first 8 characters. */
export function linkLabels(links: readonly string[], known: ReadonlyMap<string, Pick<Section, "section_code" | "component">>): string[] {
  return links
    .map((id) => {
      const s = known.get(id);
      return s ? sectionLabel(s) : id.slice(0, 8);
    })
    .sort((a, b) => a.localeCompare(b));
}

/** The grading bases in the order the server answers them. */
export const GRADING_BASES: readonly GradingBasis[] = ["letter", "pass_fail", "audit"];

/** How the console names a grading basis. */
export const BASIS_NAMES: Readonly<Record<GradingBasis, string>> = { letter: "letter", pass_fail: "pass/fail", audit: "audit" };

/** "3", or "1–4 (3 by default)" for a course taken for a range of credits. */
export function creditsText(c: { credits: number | null; min_credits?: number; max_credits?: number }): string {
  if (c.credits === null) return "—";
  const min = c.min_credits ?? c.credits;
  const max = c.max_credits ?? c.credits;
  return min === max ? `${c.credits}` : `${min}–${max} (${c.credits} by default)`;
}

/** What the server would refuse in a course's credit range, said before sending (null: fine). */
export function creditRangeProblem(credits: number, min: number | null, max: number | null): string | null {
  if (min !== null && (min < 0 || min > credits)) return "The fewest credits must be from 0 to the course's credits.";
  if (max !== null && (max < credits || max > 12)) return "The most credits must be from the course's credits to 12.";
  return null;
}

/** A course as the console lists it, gathered from its sections and the courses created here. */
export interface CourseRow {
  code: string;
  title: string;
  credits: number | null;
  min_credits?: number;
  max_credits?: number;
  grading_bases?: GradingBasis[];
  components: Component[];
  corequisites: string[];
  sections: number;
}

/** One row per course: the ones created in this session first known, then filled in (and counted) from the sections. */
export function courseRows(
  created: readonly Omit<CourseRow, "sections">[],
  sections: readonly Pick<Section, "course_code" | "title" | "credits" | "min_credits" | "max_credits" | "grading_bases" | "components" | "corequisites">[],
): CourseRow[] {
  const rows = new Map<string, CourseRow>();
  for (const c of created) rows.set(c.code, { ...c, sections: 0 });
  for (const s of sections) {
    const row = rows.get(s.course_code);
    if (row) row.sections += 1;
    else
      rows.set(s.course_code, {
        code: s.course_code,
        title: s.title,
        credits: s.credits ?? null,
        min_credits: s.min_credits,
        max_credits: s.max_credits,
        grading_bases: s.grading_bases,
        components: [...(s.components ?? [])],
        corequisites: [...(s.corequisites ?? [])],
        sections: 1,
      });
  }
  return [...rows.values()].sort((a, b) => a.code.localeCompare(b.code));
}

/** A course code as the server stores it (`cs 101`, `MATH-2413` → `CS101`, `MATH2413`), for matching only: the server validates. */
export function canonicalCode(text: string): string {
  return text.trim().toUpperCase().replace(/[ -]/g, "");
}

/** The longest an offer may stand: 43 200 minutes, 30 days (the server's limit). */
export const MAX_OFFER_WINDOW = 43_200;
/** The server's default offer window: a day. */
export const DEFAULT_OFFER_WINDOW = 1_440;

/** What the server would refuse in an offer window, said before sending; null when it is fine. */
export function offerWindowProblem(mode: WaitlistMode, minutes: number): string | null {
  if (mode !== "offer") return null;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_OFFER_WINDOW) {
    return `An offer stands 1 to ${MAX_OFFER_WINDOW} minutes (30 days), in whole minutes.`;
  }
  return null;
}

/**
 * The waitlist fields of a new section: none in `auto` mode (the default, so a server
 * without offers is not sent fields it would refuse), the mode and window in `offer` mode.
 */
export function waitlistFields(mode: WaitlistMode, minutes: number): Pick<NewSection, "waitlist_mode" | "offer_window_minutes"> {
  return mode === "offer" ? { waitlist_mode: "offer", offer_window_minutes: minutes } : {};
}

/** How the section list says a section's waitlist mode: "Offer (1 day to accept)", "Automatic". */
export function waitlistModeText(s: Pick<Section, "waitlist_mode" | "offer_window_minutes">): string {
  if (s.waitlist_mode !== "offer") return "Automatic";
  return s.offer_window_minutes ? `Offer (${durationText(s.offer_window_minutes)} to accept)` : "Offer";
}
