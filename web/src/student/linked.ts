// Linked sets on the student page: a course with required components (lecture + lab, or
// lecture + lab + recitation) is taken as one section of each, the others linked to the
// chosen lecture. Pure functions over the catalog's sections and the schedule: which rows
// nest under which lecture in the search, which sections the set chooser offers, whether a
// choice is complete, and how the schedule groups a set's members.
import type { Component, Schedule, ScheduleEntry, Section } from "./registration";

export const COMPONENT_NAMES: Readonly<Record<Component, string>> = {
  lecture: "Lecture",
  lab: "Lab",
  recitation: "Recitation",
  seminar: "Seminar",
  studio: "Studio",
};

/** Whether the section's course is taken as a linked set. */
export function isLinked(s: Pick<Section, "components">): boolean {
  return (s.components?.length ?? 0) > 0;
}

/** Whether the section is its course's primary (the lecture a set is built around). */
export function isPrimary(s: Pick<Section, "components" | "component">): boolean {
  return isLinked(s) && s.component === s.components?.[0];
}

/** "Requires in the same term: MATH2413", or null for a course without corequisites. */
export function corequisiteText(s: Pick<Section, "corequisites">): string | null {
  const c = s.corequisites ?? [];
  return c.length ? `Requires in the same term: ${c.join(", ")}` : null;
}

/** One row of the result list: a section, and whether it sits under a lecture of its set. */
export interface SearchRow {
  section: Section;
  /** The lecture this row is listed under (a linked lab or recitation on the same page). */
  under: string | null;
}

/**
 * The result list in display order: each lecture of a linked course followed by its linked
 * sections found on the page; a linked section is listed once, under the first of its
 * lectures on the page, and alone (at its own place) when none of them is on the page.
 */
export function searchRows(sections: Section[]): SearchRow[] {
  const onPage = new Map(sections.map((s) => [s.id, s]));
  const placed = new Set<string>();
  const rows: SearchRow[] = [];
  // Which lecture on the page each linked section goes under.
  const parent = new Map<string, string>();
  for (const s of sections) {
    if (!isPrimary(s)) continue;
    for (const id of s.links ?? []) {
      const child = onPage.get(id);
      if (child && !isPrimary(child) && !parent.has(id)) parent.set(id, s.id);
    }
  }
  for (const s of sections) {
    if (placed.has(s.id)) continue;
    if (parent.has(s.id)) continue; // listed under its lecture
    rows.push({ section: s, under: null });
    placed.add(s.id);
    if (!isPrimary(s)) continue;
    for (const child of sections) {
      if (parent.get(child.id) === s.id && !placed.has(child.id)) {
        rows.push({ section: child, under: s.id });
        placed.add(child.id);
      }
    }
  }
  return rows;
}

/** The sections offered for one component of a set. */
export interface ComponentChoice {
  component: Component;
  options: Section[];
}

/** Per non-primary component of `primary`'s course, the sections linked to `primary`. */
export function setChoices(primary: Section, courseSections: Section[]): ComponentChoice[] {
  const links = new Set(primary.links ?? []);
  return (primary.components ?? []).slice(1).map((component) => ({
    component,
    options: courseSections.filter((s) => links.has(s.id) && s.component === component),
  }));
}

/** The chosen set, primary first: `{ids}`, or `{missing}` naming the parts not chosen yet. */
export function chosenSet(
  primary: Section,
  choices: ComponentChoice[],
  picked: Partial<Record<Component, string>>,
): { ids: string[] } | { missing: Component[] } {
  const missing: Component[] = [];
  const ids = [primary.id];
  for (const c of choices) {
    const id = picked[c.component];
    if (id && c.options.some((o) => o.id === id)) ids.push(id);
    else missing.push(c.component);
  }
  return missing.length ? { missing } : { ids };
}

/** How the schedule shows a place. `held`: a decision is still taking the seat. */
export type PlaceKind = "enrolled" | "waitlisted" | "held";

export interface SchedulePlace {
  entry: ScheduleEntry;
  kind: PlaceKind;
  /** Which part of a linked set, when known from the catalog. */
  component: Component | null;
}

/** The schedule's places of one course: one place, or every member of a linked set. */
export interface ScheduleGroup {
  course_code: string;
  places: SchedulePlace[];
  /** More than one section of the course: a linked set (a plain course allows one). */
  linked: boolean;
}

/**
 * The enrolled credits, each course's once: a lecture and its lab are one course of, say,
 * 4 credits (as the credit limit counts them), though each section of the schedule
 * carries the course's credits. Audited courses are left out.
 */
export function scheduleCredits(groups: ScheduleGroup[]): number {
  let total = 0;
  for (const g of groups) {
    const seat = g.places.find((p) => p.kind === "enrolled");
    // An audited course earns nothing: the schedule totals it apart.
    if (seat && seat.entry.grading_basis !== "audit") total += seat.entry.credits;
  }
  return total;
}

/** The kind of a place; a place marked `held` (or waiting without a position) is not settled. */
export function placeKind(entry: ScheduleEntry, listed: "enrolled" | "waitlisted"): PlaceKind {
  if (entry.status === "held") return "held";
  if (listed === "waitlisted" && entry.position == null) return "held";
  return listed;
}

/**
 * The schedule by course, in the order the courses first appear; a set's members ordered by
 * their component (the primary first, as the course lists them), then by section code.
 * `known` gives the catalog's sections seen so far, for their component.
 */
export function scheduleGroups(schedule: Schedule, known: Map<string, Section>): ScheduleGroup[] {
  const groups = new Map<string, ScheduleGroup>();
  const add = (entry: ScheduleEntry, listed: "enrolled" | "waitlisted") => {
    const s = known.get(entry.section_id);
    const component = s && isLinked(s) ? (s.component ?? null) : null;
    let g = groups.get(entry.course_code);
    if (!g) {
      g = { course_code: entry.course_code, places: [], linked: false };
      groups.set(entry.course_code, g);
    }
    g.places.push({ entry, kind: placeKind(entry, listed), component });
  };
  for (const e of schedule.enrolled) add(e, "enrolled");
  for (const w of schedule.waitlisted) add(w, "waitlisted");
  for (const h of schedule.held ?? []) add({ ...h, status: "held" }, "waitlisted");
  for (const g of groups.values()) {
    g.linked = g.places.length > 1 || g.places.some((p) => p.component !== null);
    const order = (p: SchedulePlace) => {
      const s = known.get(p.entry.section_id);
      const i = p.component && s?.components ? s.components.indexOf(p.component) : -1;
      return i < 0 ? 99 : i;
    };
    g.places.sort((a, b) => order(a) - order(b) || a.entry.section_code.localeCompare(b.entry.section_code));
  }
  return [...groups.values()];
}
