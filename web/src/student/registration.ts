// The student page's API calls, typed after docs/api.md: catalog reads (with a section's
// reserved seats, restrictions and waitlist mode), the schedule (with seats offered),
// notifications and registration appointments, and the writes (enroll, drop, swap, a
// linked set, accepting or declining a seat offered), each sent with one
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
  credits: number;
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
  credits: number;
}

export interface StudentNotification {
  kind: "enrolled" | "waitlisted" | "promoted" | "dropped" | "withdrawn" | "offered" | "offer_expired" | "offer_declined";
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

export function enroll(token: string, sectionId: string, retry: RetryOptions = {}): Promise<EnrollAnswer> {
  return withIdempotentRetry(
    (key) => api<EnrollAnswer>("POST", `/api/v1/sections/${encodeURIComponent(sectionId)}/enrollments`, { token, headers: keyed(key) }),
    retry,
  );
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
