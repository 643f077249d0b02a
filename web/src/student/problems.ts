// What the student page says for each problem code the API can answer (docs/api.md
// "Errors"), plus the client's own `network_error`: one human sentence per code, so a
// refusal reads as advice, not as a status number.
import type { Problem } from "../api/client";
import { localizeInstants, type TimeFormat } from "./policy";

/** One sentence per code. `detail` is appended where it carries the useful part (which prerequisites, which field). */
export const MESSAGES: Readonly<Record<string, string>> = {
  // Registration refusals: correct answers, not failures.
  section_full: "This section is full and so is its waitlist. Pick another section.",
  time_conflict: "This section meets at the same time as one already on your schedule (or waitlist).",
  credit_limit_exceeded: "This would take you over your credit limit. Drop a course, take fewer credits, or audit a course first.",
  credits_out_of_range: "This course cannot be taken for that many credits. Pick a number within its range.",
  grading_basis_not_allowed: "This course cannot be taken under that grading basis. Pick one the course allows.",
  options_deadline_passed: "The last day to change credits or grading basis this term has passed.",
  registration_window_closed: "Registration is not open for your standing right now.",
  registration_not_open_yet: "Your registration appointment has not opened yet. Try again once it opens.",
  add_deadline_passed: "The last day to add classes this term has passed. Ask the registrar's office about a late add.",
  drop_deadline_passed: "The last day to withdraw from classes this term has passed, so this seat can no longer be dropped.",
  seats_reserved: "The seats left in this section are reserved for other students. Join its waitlist if it has room, or pick another section.",
  restricted_section: "This section is limited to certain students, and you are not one of them. Ask the department for a permit, or pick another section.",
  consent_required: "This section needs the instructor's consent. Ask the instructor or the department for a consent permit, then enroll again.",
  permit_not_found: "That permit no longer exists.",
  already_offered: "A seat in this section is already offered to you: accept or decline it under Offers in your schedule.",
  no_offer: "No seat in this section is offered to you any more: the offer ran out, was declined, or was never made.",
  reserved_above_capacity: "The reserved pools would set aside more seats than the section has.",
  reserved_below_taken: "A reserved pool cannot be made smaller than the number of students already seated in it.",
  student_on_hold: "Your account has a hold, so you cannot enroll. Contact the registrar's office.",
  prerequisites_not_met: "You have not completed the prerequisites of this course.",
  duplicate_course: "You already have a section of this course. Use Swap to change sections.",
  already_enrolled: "You already have a seat in this section.",
  already_waitlisted: "You are already on this section's waitlist.",
  not_enrolled: "You have no seat or waitlist place in this section.",
  linked_set_incomplete: "This course is taken as a set: pick one section of each of its parts (lecture, lab...).",
  not_linked: "This lab or recitation does not go with the lecture you chose. Pick one linked to it.",
  corequisite_missing: "This course must be taken together with another course in the same term.",
  corequisite_required: "Another course on your schedule requires this one in the same term. Drop both together.",
  already_held: "A seat in this section is already being taken for you. Wait a moment for it to be confirmed.",
  cart_full: "Your cart is full (20 sections). Remove a section before adding another.",
  not_held: "The server could not confirm a held seat. Reload your schedule.",
  decision_ended: "That registration ended before this seat could be held. Try again.",
  already_confirmed: "This seat was already confirmed as an enrollment.",
  // Busy or failing server: the page retries these with the same Idempotency-Key.
  rate_limited: "Too many requests in a short time. Waiting a moment before trying again.",
  overloaded: "The server is busy right now. Nothing was recorded; trying again shortly.",
  decision_pending: "Your request is still being decided. Asking again for its outcome.",
  unavailable: "The server is temporarily unavailable. Trying again shortly.",
  network_error: "The server could not be reached. Check your connection.",
  internal: "Something went wrong on the server. Please try again later.",
  // Session and access.
  unauthenticated: "Your session has expired or the login was wrong. Please log in again.",
  forbidden: "This account may not do that. Log in with a student account.",
  // Missing records and routes.
  section_not_found: "This section no longer exists.",
  term_not_found: "This term no longer exists.",
  student_not_found: "Your student record was not found.",
  hold_not_found: "That hold no longer exists.",
  course_not_found: "That course does not exist.",
  ticket_not_found: "That student has no registration appointment in this term (it may have been cleared already).",
  not_found: "The page asked the server for something that does not exist.",
  method_not_allowed: "The page sent a request the server does not accept.",
  web_not_built: "The pages of this server are not built.",
  // Bad input: the page should not send these; if it does, say what was wrong.
  invalid_body: "The request was malformed.",
  invalid_id: "An identifier in the request was malformed.",
  invalid_query: "A search filter was not accepted.",
  invalid_idempotency_key: "The request's idempotency key was malformed.",
  invalid_field: "A value was not accepted.",
  idempotency_key_reused: "This request clashed with an earlier one. Please try again.",
  payload_too_large: "The request was too large.",
  already_exists: "That already exists.",
  unknown_reference: "The request named something that does not exist.",
  capacity_below_taken: "The capacity is below the seats already taken.",
  options_in_use: "Students took this course with credits or a grading basis the change would leave out. They keep what they chose; change theirs first.",
};

/** Codes whose `detail` names the specifics worth showing (missing courses, bad field). */
const WITH_DETAIL = new Set(["prerequisites_not_met", "credits_out_of_range", "grading_basis_not_allowed", "registration_not_open_yet", "seats_reserved", "restricted_section", "linked_set_incomplete", "corequisite_missing", "corequisite_required", "invalid_query", "invalid_field", "invalid_body", "unknown_reference", "options_in_use"]);

/** Codes the page retries with the same key; the others are final answers. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  "overloaded",
  "decision_pending",
  "unavailable",
  "rate_limited",
  "network_error",
]);

/**
 * The sentence to show for a problem. Unknown codes fall back to the server's own words.
 * A time in the detail (when an appointment opens) is written in the student's locale;
 * `format` is for tests.
 */
export function describeProblem(problem: Pick<Problem, "code" | "title" | "detail">, format?: TimeFormat): string {
  const base = MESSAGES[problem.code];
  if (base === undefined) {
    return problem.detail ?? problem.title ?? `The request failed (${problem.code}).`;
  }
  if (WITH_DETAIL.has(problem.code) && problem.detail) return `${base} (${readableDetail(problem.detail, format)})`;
  return base;
}

const SECTION_ID = /\bsection [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;

/**
 * The server's detail as a student reads it: a time in their locale, "section <id>" as
 * "this section" (the id means nothing to them), "this student" as "you".
 */
export function readableDetail(detail: string, format?: TimeFormat): string {
  return localizeInstants(detail, format).replace(SECTION_ID, "this section").replace(/\bthis student\b/g, "you");
}
