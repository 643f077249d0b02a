// Unit tests of the console's catalog import rules: the JSON read before sending (a JSON
// error, a body of the wrong shape, an unknown kind told plainly), the report said in lines
// (counts per kind, row errors, changes left for the API, the headline of a check and of an
// import), and when Import may be pressed.
import { describe, expect, it } from "vitest";
import { importAllowed, importHint, importQuery, parseImport, recordsText, summariseReport, type ImportReport } from "./imports";

const report = (over: Partial<ImportReport> = {}, file: Partial<ImportReport["files"][number]> = {}): ImportReport => ({
  dry_run: true,
  changed: 1,
  failed: 0,
  generated_password: null,
  files: [{ file: "body", applied: false, kinds: [{ kind: "courses", created: 1, updated: 0, unchanged: 0, failed: 0 }], changes: [], api_changes: [], errors: [], ...file }],
  ...over,
});

describe("parseImport", () => {
  it("reads the kinds' arrays and counts the records", () => {
    const p = parseImport('{"courses":[{"code":"CS101","title":"Intro","credits":3}],"sections":[{"term":"2027SP"},{"term":"2027SP"}]}');
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.records).toBe(3);
    expect(p.body.courses?.[0].code).toBe("CS101");
    expect(recordsText(p.body)).toBe("1 course, 2 sections");
  });
  it("gives the same canonical text whatever the spacing", () => {
    const a = parseImport('{"courses": [ {"code": "CS101"} ]}');
    const b = parseImport('{"courses":[{"code":"CS101"}]}\n');
    expect(a.ok && b.ok && a.canonical === b.canonical).toBe(true);
  });
  it("tells a JSON error with the parser's own words", () => {
    const p = parseImport('{"courses": [}');
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.problem).toMatch(/^This is not JSON: .+/);
  });
  it("tells a body of the wrong shape", () => {
    expect(parseImport("")).toEqual({ ok: false, problem: "Choose a .json file or paste the catalog's JSON." });
    expect(parseImport("[1]")).toMatchObject({ ok: false, problem: expect.stringContaining("a JSON object whose keys are kinds") });
    expect(parseImport('{"course":[]}')).toEqual({ ok: false, problem: '"course" is not a kind of record: the kinds are terms, windows, courses, sections, students, tickets.' });
    expect(parseImport('{"courses":{}}')).toEqual({ ok: false, problem: '"courses" must be an array of records.' });
    expect(parseImport('{"courses":[{"code":"CS101"},"CS102"]}')).toEqual({ ok: false, problem: "courses[1]: a record is an object of fields." });
    expect(parseImport('{"courses":[]}')).toEqual({ ok: false, problem: "There is no record to import." });
  });
});

describe("summariseReport", () => {
  it("says a clean check with the command line's counts", () => {
    const s = summariseReport(report(), false);
    expect(s.tone).toBe("ok");
    expect(s.headline).toBe("Check passed: 1 record would change, no row has an error. Nothing was written.");
    expect(s.kinds).toEqual(["courses: 1 created, 0 updated, 0 unchanged, 0 failed"]);
    expect(s.errors).toEqual([]);
  });
  it("lists row errors, changes and the changes left for the API", () => {
    const s = summariseReport(
      report({ failed: 1, changed: 0 }, {
        errors: [{ kind: "sections", index: 2, line: 3, field: "capacity", message: "0 to 100000" }, { kind: null, index: 0, line: 0, field: null, message: "bad file" }],
        changes: [{ kind: "courses", index: 0, key: "CS101", action: "updated", fields: ['title: "Intro" -> "Intro to CS"'] }],
        api_changes: [{ section_id: "s1", key: "2027SP CS101 01", field: "capacity", from: "50", to: "60", how: 'PATCH /api/v1/sections/s1 {"capacity":60}' }],
      }),
      false,
    );
    expect(s.tone).toBe("error");
    expect(s.headline).toBe("Check found 2 rows with errors: as it is, nothing would be imported. Fix them, or skip them. Nothing was written.");
    expect(s.errors).toEqual(["sections[2] · capacity: 0 to 100000", "the whole import · bad file"]);
    expect(s.changes).toEqual(['updated courses CS101: title: "Intro" -> "Intro to CS"']);
    expect(s.apiChanges).toEqual(['2027SP CS101 01: capacity 50 → 60. PATCH /api/v1/sections/s1 {"capacity":60}']);
  });
  it("says what a check with skipped rows would do", () => {
    const s = summariseReport(report({ failed: 1, changed: 2 }, { errors: [{ kind: "courses", index: 1, field: "credits", message: "0 to 12" }] }), true);
    expect(s.headline).toBe("Check: 1 row with errors would be skipped, 2 records would change. Nothing was written.");
  });
  it("says an import made, skipped rows, and one refused", () => {
    expect(summariseReport(report({ dry_run: false }, { applied: true }), false).headline).toBe("Imported: 1 record changed.");
    const api = [{ section_id: "s1", field: "capacity", from: "5", to: "6", how: "PATCH" }];
    expect(summariseReport(report({ dry_run: false, changed: 3 }, { applied: true, api_changes: api }), false).headline).toBe("Imported: 3 records changed. 1 change to make through the API.");
    const skipped = report({ dry_run: false, failed: 1 }, { applied: true, errors: [{ kind: "courses", index: 1, field: null, message: "x" }] });
    expect(summariseReport(skipped, true)).toMatchObject({ tone: "error", headline: "Imported, skipping 1 row with errors: 1 record changed." });
    const refused = report({ dry_run: false, failed: 1, changed: 0 }, { applied: false, errors: [{ kind: "courses", index: 1, field: null, message: "x" }] });
    expect(summariseReport(refused, false)).toMatchObject({ tone: "error", headline: "Not imported: 1 row with errors, so nothing was written." });
  });
});

describe("importAllowed", () => {
  const clean = { canonical: "A", report: report() };
  it("waits for a clean check of the same content", () => {
    expect(importAllowed({ canonical: "A", checked: null, skipErrors: false, busy: false })).toBe(false);
    expect(importAllowed({ canonical: "A", checked: clean, skipErrors: false, busy: false })).toBe(true);
    expect(importAllowed({ canonical: "B", checked: clean, skipErrors: false, busy: false })).toBe(false);
    expect(importAllowed({ canonical: "A", checked: clean, skipErrors: false, busy: true })).toBe(false);
    expect(importAllowed({ canonical: null, checked: clean, skipErrors: true, busy: false })).toBe(false);
  });
  it("is off after a check with errors, unless rows with errors are skipped", () => {
    const dirty = { canonical: "A", report: report({ failed: 1 }, { errors: [{ kind: "courses", index: 0, field: null, message: "x" }] }) };
    expect(importAllowed({ canonical: "A", checked: dirty, skipErrors: false, busy: false })).toBe(false);
    expect(importHint({ canonical: "A", checked: dirty, skipErrors: false, busy: false })).toBe("The check found rows with errors: fix them, or choose to skip them.");
    expect(importAllowed({ canonical: "A", checked: dirty, skipErrors: true, busy: false })).toBe(true);
    expect(importAllowed({ canonical: "A", checked: null, skipErrors: true, busy: false })).toBe(true);
  });
  it("says why it is off", () => {
    expect(importHint({ canonical: "A", checked: null, skipErrors: false, busy: false })).toBe("Check this content first (a dry run), or choose to skip rows with errors.");
    expect(importHint({ canonical: "A", checked: clean, skipErrors: false, busy: false })).toBeNull();
    expect(importHint({ canonical: null, checked: null, skipErrors: false, busy: false })).toBeNull();
  });
});

describe("importQuery", () => {
  it("sends only the flags that are on", () => {
    expect(importQuery(true, false)).toBe("?dry_run=true");
    expect(importQuery(true, true)).toBe("?dry_run=true&skip_errors=true");
    expect(importQuery(false, true)).toBe("?skip_errors=true");
    expect(importQuery(false, false)).toBe("");
  });
});
