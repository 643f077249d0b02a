// Pure rules of the console's catalog import (POST /api/v1/imports, docs/operations.md
// "Importing a catalog"): the JSON an admin picks or pastes, read and checked for the
// import's shape before anything is sent; the server's report said as plain lines; and
// when Import may be pressed (after a clean check of the same content, or when the admin
// chose to skip the rows with errors). The server decides every row.

/** The kinds of records, in the order an import applies them. */
export const IMPORT_KINDS = ["terms", "windows", "courses", "sections", "students", "tickets"] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

/** The import's JSON body: an array of records per kind, every kind optional. */
export type ImportBody = Partial<Record<ImportKind, Record<string, unknown>[]>>;

/** What one kind of record did (or would do). */
export interface KindCounts {
  kind: string | null;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

/** One created or updated record. */
export interface ImportChange {
  kind: string;
  line?: number;
  index: number;
  key: string;
  action: string;
  /** For an update, each field changed: `title: "Old" -> "New"`. */
  fields: string[];
}

/** A change of an existing section the import leaves to the API (its actor holds it). */
export interface ApiChange {
  line?: number;
  key?: string;
  section_id: string;
  field: string;
  from: string;
  to: string;
  /** The request that makes it, or why there is none. */
  how: string;
}

/** A row that was not applied. */
export interface RowError {
  kind: string | null;
  index: number;
  line?: number;
  field: string | null;
  message: string;
}

export interface FileReport {
  file: string;
  applied: boolean;
  kinds: KindCounts[];
  changes: ImportChange[];
  api_changes: ApiChange[];
  errors: RowError[];
}

/** The answer of `POST /api/v1/imports`. */
export interface ImportReport {
  dry_run: boolean;
  changed: number;
  failed: number;
  /** The password of the accounts created without one: answered once, never again. */
  generated_password: string | null;
  files: FileReport[];
}

/** The content read: the body to send and its canonical text, or why it cannot be sent. */
export type ParsedImport =
  | { ok: true; body: ImportBody; canonical: string; records: number }
  | { ok: false; problem: string };

/** Read the pasted or picked text as the import's JSON format; nothing is sent when this fails. */
export function parseImport(text: string): ParsedImport {
  if (!text.trim()) return { ok: false, problem: "Choose a .json file or paste the catalog's JSON." };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `This is not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, problem: `An import is a JSON object whose keys are kinds (${IMPORT_KINDS.join(", ")}), each an array of records.` };
  }
  const body: ImportBody = {};
  let records = 0;
  for (const [key, list] of Object.entries(value as Record<string, unknown>)) {
    if (!(IMPORT_KINDS as readonly string[]).includes(key)) {
      return { ok: false, problem: `"${key}" is not a kind of record: the kinds are ${IMPORT_KINDS.join(", ")}.` };
    }
    if (list === null) continue;
    if (!Array.isArray(list)) return { ok: false, problem: `"${key}" must be an array of records.` };
    const at = list.findIndex((r) => r === null || typeof r !== "object" || Array.isArray(r));
    if (at >= 0) return { ok: false, problem: `${key}[${at}]: a record is an object of fields.` };
    body[key as ImportKind] = list as Record<string, unknown>[];
    records += list.length;
  }
  if (records === 0) return { ok: false, problem: "There is no record to import." };
  return { ok: true, body, canonical: JSON.stringify(body), records };
}

/** `3 courses, 1 section` */
export function recordsText(body: ImportBody): string {
  const parts = IMPORT_KINDS.filter((k) => body[k]?.length).map((k) => {
    const n = body[k]!.length;
    return `${n} ${n === 1 ? k.replace(/s$/, "") : k}`;
  });
  return parts.join(", ");
}

/** The report as the panel shows it: a headline, then lines by part (any part may be empty). */
export interface ReportSummary {
  tone: "ok" | "error";
  headline: string;
  kinds: string[];
  changes: string[];
  apiChanges: string[];
  errors: string[];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `courses: 1 created, 0 updated, 0 unchanged, 0 failed` (the command line's words). */
export function kindLine(k: KindCounts): string {
  return `${k.kind ?? "records"}: ${k.created} created, ${k.updated} updated, ${k.unchanged} unchanged, ${k.failed} failed`;
}

/** `courses[2] · credits: 0 to 12` (the index in the body's array); `the whole import · …` for the body as a whole. */
export function errorLine(e: RowError): string {
  const where = e.kind ? `${e.kind}[${e.index}]` : e.line ? `line ${e.line}` : "the whole import";
  return `${where} · ${e.field ? `${e.field}: ` : ""}${e.message}`;
}

/** `2027SP CS101 01: capacity 50 → 60. PATCH /api/v1/sections/… {"capacity":60}` */
export function apiChangeLine(c: ApiChange): string {
  return `${c.key ?? c.section_id}: ${c.field} ${c.from} → ${c.to}. ${c.how}`;
}

/** `created courses CS101` / `updated courses CS101: title: "Intro" -> "Intro to CS"` */
export function changeLine(c: ImportChange): string {
  return `${c.action} ${c.kind} ${c.key}${c.fields.length ? `: ${c.fields.join("; ")}` : ""}`;
}

/**
 * Say what the import did or, for a check, would do. `skipErrors` is what was asked: with
 * it, rows without errors are (or would be) applied even when others fail.
 */
export function summariseReport(report: ImportReport, skipErrors: boolean): ReportSummary {
  const files = report.files;
  const kinds = files.flatMap((f) => f.kinds).map(kindLine);
  const changes = files.flatMap((f) => f.changes).map(changeLine);
  const apiChanges = files.flatMap((f) => f.api_changes).map(apiChangeLine);
  const errors = files.flatMap((f) => f.errors).map(errorLine);
  const failed = Math.max(report.failed, errors.length);
  const changed = plural(report.changed, "record");
  const left = apiChanges.length ? ` ${plural(apiChanges.length, "change")} to make through the API.` : "";
  let headline: string;
  let tone: "ok" | "error" = "ok";
  if (report.dry_run) {
    if (failed === 0) headline = `Check passed: ${changed} would change, no row has an error. Nothing was written.${left}`;
    else if (skipErrors) {
      headline = `Check: ${plural(failed, "row")} with errors would be skipped, ${changed} would change. Nothing was written.${left}`;
      tone = "error";
    } else {
      headline = `Check found ${plural(failed, "row")} with errors: as it is, nothing would be imported. Fix them, or skip them. Nothing was written.`;
      tone = "error";
    }
  } else if (files.some((f) => f.applied) || (failed === 0 && files.length > 0)) {
    headline = failed
      ? `Imported, skipping ${plural(failed, "row")} with errors: ${changed} changed.${left}`
      : `Imported: ${changed} changed.${left}`;
    tone = failed ? "error" : "ok";
  } else {
    headline = `Not imported: ${plural(failed, "row")} with errors, so nothing was written.`;
    tone = "error";
  }
  return { tone, headline, kinds, changes, apiChanges, errors };
}

/** What Import may send, given the content now and the last check. */
export interface ImportGate {
  /** The content as it is now (null: it does not parse). */
  canonical: string | null;
  /** The content of the last check and its report, if any. */
  checked: { canonical: string; report: ImportReport } | null;
  skipErrors: boolean;
  busy: boolean;
}

/** Import is allowed after a clean check of this very content, or when the admin chose to skip rows with errors. */
export function importAllowed(g: ImportGate): boolean {
  if (g.busy || g.canonical === null) return false;
  if (g.skipErrors) return true;
  if (!g.checked || g.checked.canonical !== g.canonical) return false;
  const r = g.checked.report;
  return r.dry_run && r.failed === 0 && r.files.every((f) => f.errors.length === 0);
}

/** Why Import is off, or null when it is on. */
export function importHint(g: ImportGate): string | null {
  if (importAllowed(g) || g.busy || g.canonical === null) return null;
  if (!g.checked || g.checked.canonical !== g.canonical) return "Check this content first (a dry run), or choose to skip rows with errors.";
  return "The check found rows with errors: fix them, or choose to skip them.";
}

/** The query of the request: a check writes nothing. */
export function importQuery(dryRun: boolean, skipErrors: boolean): string {
  const q = [dryRun && "dry_run=true", skipErrors && "skip_errors=true"].filter(Boolean);
  return q.length ? `?${q.join("&")}` : "";
}
