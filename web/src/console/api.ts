// The console's API calls, typed after docs/api.md: the cluster view (fed by every node's
// heartbeat), hot sections, moves and the operator's actions, the serving node's readiness,
// and the admin basics (terms, windows, courses, sections with their links and waitlist
// mode, accounts, holds)
// and registration policy (reserved seats, restrictions, student attributes, appointments),
// permits, and the catalog import.
import { api } from "../api/client";
import { importQuery, type ImportBody, type ImportReport } from "./imports";
import type { Deadlines } from "../student/deadlines";
import type { WaitlistMode } from "../student/offers";
import type { PolicyAttribute, ReservedPool, Restriction } from "../student/policy";

export type { PolicyAttribute, ReservedPool, Restriction, WaitlistMode };

export interface NodeLoad {
  decisions_per_s: number;
  in_flight: number;
  requests_per_s?: number;
  p99_ms?: number | null;
  overloaded_per_s?: number;
  broker_connected?: boolean;
  redis?: "ok" | "degraded" | "off";
}

export interface NodeView {
  id: string;
  address: string;
  state: "joining" | "active" | "draining" | "left" | "dead";
  lease_age_ms: number;
  shards_owned: number;
  load: NodeLoad;
}

export interface MoveRow {
  id: number;
  shard: number;
  from: string;
  to: string;
  reason: string;
  requested_by?: string | null;
  state: "pending" | "running" | "done" | "failed";
  error?: string | null;
  started_at?: string;
  finished_at?: string | null;
}

export interface ClusterView {
  at?: string;
  shards: number;
  coordinator: string | null;
  outbox_backlog?: number | null;
  nodes: NodeView[];
  moves: MoveRow[];
}

export interface HotSection {
  section_id: string;
  shard: number;
  node_id: string;
  decisions_per_s: number;
  in_flight: number;
}

export interface Readiness {
  status: string;
  details?: { node?: string; outbox_backlog?: number | null; broker?: string; redis_mirror?: string | null };
}

export interface Term {
  id: string;
  code: string;
  name: string;
}

export type Standing = "freshman" | "sophomore" | "junior" | "senior" | "graduate";
export const STANDINGS: Standing[] = ["freshman", "sophomore", "junior", "senior", "graduate"];

export interface RegistrationWindow {
  id: string;
  term_id: string;
  standing: Standing;
  opens_at: string;
  closes_at: string;
}

/** A part of a course taught in its own sections (docs/api.md "Linked sections"). */
export type Component = "lecture" | "lab" | "recitation" | "seminar" | "studio";

export interface Meeting {
  day: string;
  start: string;
  end: string;
}

export interface Section {
  id: string;
  term_id?: string;
  course_code: string;
  section_code: string;
  title: string;
  credits?: number;
  min_credits?: number;
  max_credits?: number;
  grading_bases?: GradingBasis[];
  capacity: number;
  seats_taken: number;
  seats_left: number;
  waitlist_capacity: number;
  waitlist_length: number;
  meetings?: Meeting[];
  /** Which of the course's components this section is. */
  component: Component;
  /** The sections linked to this one (a lecture's labs, a lab's lectures). */
  links: string[];
  /** The course's required components, primary first. */
  components: Component[];
  corequisites: string[];
  /** Seats reserved for some students (absent from a server without pools). */
  reserved?: ReservedPool[];
  /** Free seats anyone may take. */
  general_seats_left?: number;
  restrictions?: Restriction[];
  /** How a freed seat goes to the waitlist (absent from a server without offers: `auto`). */
  waitlist_mode?: WaitlistMode;
  /** How long an offer stands, in minutes. */
  offer_window_minutes?: number;
  /** Whether adding it takes a consent permit (absent from a server without permits). */
  consent_required?: boolean;
}

/** A pool as it is sent: whom it reserves for, how many seats, until when (null: the whole term). */
export interface PoolSpec {
  attribute: PolicyAttribute;
  value: string;
  seats: number;
  release_at: string | null;
}

export type GradingBasis = "letter" | "pass_fail" | "audit";

export interface Course {
  code: string;
  title: string;
  credits: number;
  prerequisites: string[];
  components: Component[];
  corequisites: string[];
  /** The fewest credits a student may take it for (default: `credits`). */
  min_credits?: number;
  /** The most credits a student may take it for (default: `credits`). */
  max_credits?: number;
  /** The grading bases it may be taken under (default: letter only). */
  grading_bases?: GradingBasis[];
}

export interface NewSection {
  term_id: string;
  course_code: string;
  section_code: string;
  capacity: number;
  waitlist_capacity: number;
  meetings: Meeting[];
  component: Component;
  links: string[];
  reserved?: PoolSpec[];
  restrictions?: Restriction[];
  waitlist_mode?: WaitlistMode;
  /** 1 to 43 200 (30 days); the server's default is 1 440 (a day). */
  offer_window_minutes?: number;
  /** Adding it takes a consent permit (sent only when true). */
  consent_required?: boolean;
}

export interface Account {
  id: string;
  username: string;
  role: "student" | "admin" | "operator";
  standing: Standing | null;
  max_credits: number;
  majors?: string[];
  program?: string | null;
  cohort?: string | null;
}

/** What `PATCH /students/{id}` changes; a field left out stays as it is. */
export interface StudentChange {
  standing?: Standing;
  max_credits?: number;
  majors?: string[];
  program?: string | null;
  cohort?: string | null;
}

/** A student's registration appointment in a term; without `closes_at` it runs until the standing's window closes. */
export interface TimeTicket {
  term_id: string;
  student_id: string;
  opens_at: string;
  closes_at?: string | null;
}

export interface Hold {
  id: string;
  student_id: string;
  reason: string;
  created_at: string;
}

const q = encodeURIComponent;

export const cluster = (t: string) => api<ClusterView>("GET", "/api/v1/cluster", { token: t });
export const hotSections = (t: string, limit = 10) =>
  api<HotSection[]>("GET", `/api/v1/cluster/hot-sections?limit=${limit}`, { token: t });
export const recentMoves = (t: string, limit = 20) => api<MoveRow[]>("GET", `/api/v1/cluster/moves?limit=${limit}`, { token: t });
export const readiness = () => api<Readiness>("GET", "/readyz").catch((e) => (e?.problem ? (e.problem as Readiness) : null));
export const moveShard = (t: string, shard: number, to: string) =>
  api<unknown>("POST", `/api/v1/cluster/shards/${shard}/move`, { token: t, body: { to } });
export const drainNode = (t: string, node: string) => api<unknown>("POST", `/api/v1/cluster/nodes/${q(node)}/drain`, { token: t, body: {} });
export const rebalance = (t: string) => api<unknown>("POST", "/api/v1/cluster/rebalance", { token: t, body: {} });

export const terms = () => api<Term[]>("GET", "/api/v1/terms");
export const createTerm = (t: string, code: string, name: string) => api<Term>("POST", "/api/v1/terms", { token: t, body: { code, name } });
/** A term's add, drop and withdrawal deadlines (public). */
export const deadlines = (term: string) => api<Deadlines>("GET", `/api/v1/terms/${q(term)}/deadlines`);
/** Replaces all three; a null one is unset. Answers the deadlines as stored. */
export const setDeadlines = (t: string, term: string, d: Deadlines) =>
  api<Deadlines>("PUT", `/api/v1/terms/${q(term)}/deadlines`, { token: t, body: d });
export const windows = (t: string, term: string) => api<RegistrationWindow[]>("GET", `/api/v1/terms/${q(term)}/windows`, { token: t });
export const setWindow = (t: string, term: string, standing: Standing, opens_at: string, closes_at: string) =>
  api<RegistrationWindow>("POST", `/api/v1/terms/${q(term)}/windows`, { token: t, body: { standing, opens_at, closes_at } });
export const sections = (term: string, course: string) =>
  api<{ items: Section[] }>("GET", `/api/v1/terms/${q(term)}/sections?limit=50${course ? `&q=${q(course)}` : ""}`);
/** Every section of one course in the term (the link pickers choose among them). */
export const courseSections = (term: string, course: string) =>
  api<{ items: Section[] }>("GET", `/api/v1/terms/${q(term)}/sections?limit=500&course=${q(course)}`);
export const section = (id: string) => api<Section>("GET", `/api/v1/sections/${q(id)}`);
export const createCourse = (t: string, course: Course) => api<Course>("POST", "/api/v1/courses", { token: t, body: course });
/** Change a course's credit range or grading bases (what is left out stays). */
export const patchCourseGrading = (
  t: string,
  code: string,
  patch: { min_credits?: number; max_credits?: number; grading_bases?: GradingBasis[] },
) => api<Course>("PATCH", `/api/v1/courses/${q(code)}`, { token: t, body: patch });
export const createSection = (t: string, s: NewSection) => api<Section>("POST", "/api/v1/sections", { token: t, body: s });
export const setLinks = (t: string, section: string, links: string[]) =>
  api<Section>("PUT", `/api/v1/sections/${q(section)}/links`, { token: t, body: { links } });
export const setCapacity = (t: string, section: string, capacity: number) =>
  api<Section>("PATCH", `/api/v1/sections/${q(section)}`, { token: t, body: { capacity } });
/** Replaces every pool of the section. */
export const setReserved = (t: string, section: string, reserved: PoolSpec[]) =>
  api<Section>("PUT", `/api/v1/sections/${q(section)}/reserved`, { token: t, body: { reserved } });
export const findAccount = (t: string, username: string) => api<Account>("GET", `/api/v1/students?username=${q(username)}`, { token: t });
export const holds = (t: string, student: string) => api<Hold[]>("GET", `/api/v1/students/${q(student)}/holds`, { token: t });
export const addHold = (t: string, student: string, reason: string) =>
  api<Hold>("POST", `/api/v1/students/${q(student)}/holds`, { token: t, body: { reason } });
export const liftHold = (t: string, student: string, hold: string) =>
  api<void>("DELETE", `/api/v1/students/${q(student)}/holds/${q(hold)}`, { token: t });
export const updateStudent = (t: string, student: string, change: StudentChange) =>
  api<Account>("PATCH", `/api/v1/students/${q(student)}`, { token: t, body: change });
/** Set or replace the appointment; `closes_at` is sent only when given. */
export const setTimeTicket = (t: string, term: string, student: string, opens_at: string, closes_at: string | null = null) =>
  api<TimeTicket>("PUT", `/api/v1/terms/${q(term)}/time-tickets/${q(student)}`, { token: t, body: closes_at ? { opens_at, closes_at } : { opens_at } });
export const clearTimeTicket = (t: string, term: string, student: string) =>
  api<void>("DELETE", `/api/v1/terms/${q(term)}/time-tickets/${q(student)}`, { token: t });

/** What a permit lets through. */
export type PermitKind = "capacity" | "prerequisite" | "time_conflict" | "credit_overload" | "restriction" | "consent" | "late_add";
export const PERMIT_KINDS: PermitKind[] = ["capacity", "prerequisite", "time_conflict", "credit_overload", "restriction", "consent", "late_add"];

/** A permit (override) as the server shows it. */
export interface Permit {
  id: string;
  student_id: string;
  term_id: string;
  section_id: string | null;
  kind: PermitKind;
  max_credits: number | null;
  jump_waitlist: boolean;
  single_use: boolean;
  expires_at: string | null;
  note: string | null;
  granted_by: string | null;
  granted_at: string;
  revoked_at: string | null;
  used_at: string | null;
  used_for: string | null;
  state: "active" | "used" | "expired" | "revoked";
}

/** A permit as it is granted. */
export interface NewPermit {
  student_id: string;
  kind: PermitKind;
  section_id?: string;
  term_id?: string;
  max_credits?: number;
  jump_waitlist?: boolean;
  single_use?: boolean;
  expires_at?: string;
  note?: string;
}

export const permits = (t: string, student: string) => api<Permit[]>("GET", `/api/v1/permits?student_id=${q(student)}`, { token: t });
export const grantPermit = (t: string, p: NewPermit) => api<Permit>("POST", "/api/v1/permits", { token: t, body: p });
export const revokePermit = (t: string, id: string) => api<Permit>("POST", `/api/v1/permits/${q(id)}/revoke`, { token: t, body: {} });

/** The catalog and roster import (docs/operations.md "Importing a catalog"); a dry run writes nothing. */
export const importCatalog = (t: string, body: ImportBody, dryRun: boolean, skipErrors: boolean) =>
  api<ImportReport>("POST", `/api/v1/imports${importQuery(dryRun, skipErrors)}`, { token: t, body });
