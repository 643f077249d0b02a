// The student page's API calls, typed after docs/api.md: catalog reads (with a section's
// reserved seats, restrictions and waitlist mode), the schedule (with seats offered),
// notifications and registration appointments, and the writes (enroll, drop, swap, a
// linked set, accepting or declining a seat offered, choosing or changing the credits and
// grading basis of a place), each sent with one
// Idempotency-Key per user action and retried with it while the server is busy (retry.ts).
import { api } from "../api/client";
import type { Permit } from "../console/api";
import type { Meeting } from "./calendar";
import type { Deadlines, WithdrawnEntry } from "./deadlines";
import type { WaitlistMode } from "./offers";
import type { ReservedPool, Restriction, TimeTicket } from "./policy";
import { withIdempotentRetry, type RetryOptions } from "./retry";

export interface Term {
  id: string;
  code: string;
  name: string;
}

export interface Section {
  id: string;
  course_code: string;
  section_code: string;
  title: string;
  term_id: string;
  capacity: number;
  seats_taken: number;
  seats_left: number;
  waitlist_capacity: number;
  waitlist_length: number;
  credits: number;
  /** The fewest credits the course may be taken for (absent from a server without variable credits: `credits`). */
  min_credits?: number;
  /** The most credits the course may be taken for. */
  max_credits?: number;
  /** The grading bases the course may be taken under (absent: letter only). */
  grading_bases?: GradingBasis[];
  meetings: Meeting[];
  prerequisites: string[];
  /** Which part of its course this section is (a plain course's sections are `lecture`). */
  component?: Component;
  /** Sections linked to this one, either side: a lecture's labs, a lab's lectures. */
  links?: string[];
  /** The course's required components, the primary first; `[]` for a plain course. */
  components?: Component[];
  /** Courses to take in the same term. */
  corequisites?: string[];
  /** Pools of seats reserved for some students (absent from a server without pools). */
  reserved?: ReservedPool[];
  /** Free seats anyone may take; `seats_left` counts the reserved ones too. */
  general_seats_left?: number;
  /** Who may (include) or may not (exclude) take the section. */
  restrictions?: Restriction[];
  /** `offer`: a freed seat is offered to the next waiting student, who accepts or declines it (absent from a server without offers: `auto`). */
  waitlist_mode?: WaitlistMode;
  /** How long an offer stands, in minutes. */
  offer_window_minutes?: number;
}

export type Component = "lecture" | "lab" | "recitation" | "seminar" | "studio";

export type GradingBasis = "letter" | "pass_fail" | "audit";

/** What a student asks for on an enroll or a change; each left out is chosen by the server. */
export interface EnrollOptions {
  credits?: number;
  grading_basis?: GradingBasis;
}

/** The answer to a change of options. */
export interface OptionsAnswer {
  section_id: string;
  credits: number;
  grading_basis: GradingBasis;
  sections: string[];
  changed: boolean;
}

export interface SectionPage {
  items: Section[];
  next_cursor: string | null;
}

export interface EnrollAnswer {
  status: "enrolled" | "waitlisted";
  section_id: string;
  student_id: string;
  enrolled_at?: string;
  /** 1-based place on the waitlist (waitlisted only). */
  position?: number;
}

export interface DropAnswer {
  status: "dropped";
  promoted?: boolean;
  /** A section of a linked set: every member dropped with it. */
  dropped?: string[];
  decision_id?: string;
  /** A seat left after the term's `drop_by`: a withdrawal, the record keeps a W. */
  withdrawn?: boolean;
}

/** The answer to `POST /enrollments/sets`: every section taken (and `dropped` the replaced ones). */
/** The answer to a decline of a seat offered: `promoted` says whether it went on to the next student. */
export interface DeclineAnswer {
  status: "declined";
  section_id: string;
  promoted: boolean;
}

export interface SetAnswer {
  status: "enrolled";
  decision_id: string;
  sections: string[];
  dropped: string[];
}

export interface SwapAnswer {
  status: "swapped";
  added: EnrollAnswer;
  dropped: { section_id: string; promoted: boolean };
}

export interface ScheduleEntry {
  section_id: string;
  course_code: string;
  section_code: string;
  /** Credits the student takes the course for. */
  credits: number;
  /** How it is graded (absent from a server without grading bases: letter). */
  grading_basis?: GradingBasis;
  meetings: Meeting[];
  enrolled_at?: string;
  /** 1-based waitlist place (waitlisted entries only). */
  position?: number;
  /** `held`: a seat a decision is still taking; neither enrolled nor waitlisted yet. */
  status?: string;
  /** Until when a seat offered waits for the student (offered entries only), RFC 3339. */
  offer_expires_at?: string;
  /** Waitlisted entries skipped at promotion: the code of the rule the student no longer passes. */
  skipped_for?: string;
}

export interface Schedule {
  enrolled: ScheduleEntry[];
  waitlisted: ScheduleEntry[];
  /** Seats held by a decision of the student's under way (not enrolled yet). */
  held?: ScheduleEntry[];
  /** Seats an offer-mode waitlist offers the student: accept or decline each before its `offer_expires_at`. */
  offered?: ScheduleEntry[];
  /** Seats withdrawn from (left after a term's `drop_by`), oldest first: the W history. */
  withdrawn?: WithdrawnEntry[];
  /** Credits of the enrolled courses, audited ones left out. */
  credits: number;
  /** Credits of the enrolled courses audited: they count toward no limit. */
  audit_credits?: number;
}

export interface StudentNotification {
  kind: "enrolled" | "waitlisted" | "promoted" | "dropped" | "withdrawn" | "offered" | "offer_expired" | "offer_declined" | "options_changed";
  message: string;
  section_id: string;
  created_at: string;
}

/** "CS101-01": how the page names a section. */
export function sectionLabel(s: { course_code: string; section_code: string }): string {
  return `${s.course_code}-${s.section_code}`;
}

export const listTerms = () => api<Term[]>("GET", "/api/v1/terms");
export const listSections = (termId: string, query: string) =>
  api<SectionPage>("GET", `/api/v1/terms/${encodeURIComponent(termId)}/sections?${query}`);
export const getSchedule = (token: string) => api<Schedule>("GET", "/api/v1/students/me/schedule", { token });
export const getNotifications = (token: string) =>
  api<StudentNotification[]>("GET", "/api/v1/students/me/notifications", { token });
/** The student's registration appointments, one per term that has one. */
export const getTimeTickets = (token: string) => api<TimeTicket[]>("GET", "/api/v1/students/me/time-tickets", { token });
/** A term's add, drop and withdrawal deadlines (public). */
export const getDeadlines = (termId: string) => api<Deadlines>("GET", `/api/v1/terms/${encodeURIComponent(termId)}/deadlines`);
export const getPermits = (token: string) => api<Permit[]>("GET", "/api/v1/students/me/permits", { token });

const keyed = (key: string) => ({ "Idempotency-Key": key });

export function enroll(token: string, sectionId: string, retry: RetryOptions = {}, options: EnrollOptions = {}): Promise<EnrollAnswer> {
  const body = options.credits === undefined && options.grading_basis === undefined ? undefined : options;
  return withIdempotentRetry(
    (key) => api<EnrollAnswer>("POST", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments`, { token, headers: keyed(key), body }),
    retry,
  );
}

/** Change the credits or grading basis of the student's place in a section (until the term's drop deadline). */
export function changeOptions(token: string, sectionId: string, options: EnrollOptions, retry: RetryOptions = {}): Promise<OptionsAnswer> {
  return withIdempotentRetry(
    (key) => api<OptionsAnswer>("PATCH", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments/me`, { token, headers: keyed(key), body: options }),
    retry,
  );
}

/** How the page names a grading basis. */
export const BASIS_LABELS: Readonly<Record<GradingBasis, string>> = {
  letter: "Letter grade",
  pass_fail: "Pass/fail",
  audit: "Audit (no credit)",
};

/** The credits a section's course may be taken for, fewest first. */
export function creditChoices(s: Pick<Section, "credits" | "min_credits" | "max_credits">): number[] {
  const min = s.min_credits ?? s.credits;
  const max = s.max_credits ?? s.credits;
  const out: number[] = [];
  for (let c = min; c <= max; c++) out.push(c);
  return out;
}

/** The grading bases a section's course allows (letter only when the server does not say). */
export function basisChoices(s: Pick<Section, "grading_bases">): GradingBasis[] {
  return s.grading_bases && s.grading_bases.length > 0 ? s.grading_bases : ["letter"];
}

/** Whether the student has anything to choose for a section: a credit range or several bases. */
export function hasChoices(s: Pick<Section, "credits" | "min_credits" | "max_credits" | "grading_bases">): boolean {
  return creditChoices(s).length > 1 || basisChoices(s).length > 1;
}

/** "4 credits, pass/fail": how the schedule describes what a place is taken for. */
export function optionsLabel(e: Pick<ScheduleEntry, "credits" | "grading_basis">): string {
  const basis = e.grading_basis ?? "letter";
  if (basis === "audit") return `${e.credits} credits, audited (no credit)`;
  return `${e.credits} credit${e.credits === 1 ? "" : "s"}, ${basis === "pass_fail" ? "pass/fail" : "letter grade"}`;
}

export function drop(token: string, sectionId: string, retry: RetryOptions = {}): Promise<DropAnswer> {
  return withIdempotentRetry(
    (key) => api<DropAnswer>("DELETE", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments/me`, { token, headers: keyed(key) }),
    retry,
  );
}

/** Take the seat an offer-mode waitlist offers the student (their rules are checked again). */
export function acceptOffer(token: string, sectionId: string, retry: RetryOptions = {}): Promise<EnrollAnswer> {
  return withIdempotentRetry(
    (key) => api<EnrollAnswer>("POST", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments/me/accept`, { token, headers: keyed(key) }),
    retry,
  );
}

/** Turn down the seat offered: the student leaves the waitlist, the seat goes to the next. */
export function declineOffer(token: string, sectionId: string, retry: RetryOptions = {}): Promise<DeclineAnswer> {
  return withIdempotentRetry(
    (key) => api<DeclineAnswer>("POST", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments/me/decline`, { token, headers: keyed(key) }),
    retry,
  );
}

export function swap(token: string, dropId: string, addId: string, retry: RetryOptions = {}): Promise<SwapAnswer> {
  return withIdempotentRetry(
    (key) => api<SwapAnswer>("POST", "/api/v1/enrollments/swap", { token, headers: keyed(key), body: { drop: dropId, add: addId } }),
    retry,
  );
}

/** Take every section of a linked set at once (a lecture and one section of each other
 * part), or with `replacing` exchange members of a set held already (a lab for another). */
export function enrollSet(token: string, sectionIds: string[], replacing: string[] = [], retry: RetryOptions = {}): Promise<SetAnswer> {
  return withIdempotentRetry(
    (key) => api<SetAnswer>("POST", "/api/v1/enrollments/sets", { token, headers: keyed(key), body: { sections: sectionIds, replacing } }),
    retry,
  );
}

export const getSection = (sectionId: string) => api<Section>("GET", `/api/v1/sections/${encodeURIComponent(sectionId)}`);

/**
 * What to tell the student after a successful enroll. `reservedFor` names whom the free
 * seats were reserved for when the section was not full: a waitlist place then means the
 * student is not among them, not that the section is full.
 */
export function enrollOutcome(answer: EnrollAnswer, label: string, reservedFor: string | null = null): string {
  if (answer.status === "waitlisted") {
    const why = reservedFor ? `The seats left in ${label} are reserved for ${reservedFor}` : `${label} is full`;
    return `${why}: you are on its waitlist, number ${answer.position ?? "?"} in line.`;
  }
  return `You are enrolled in ${label}.`;
}
