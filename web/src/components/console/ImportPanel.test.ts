// Unit tests of the console's import panel: pasted JSON that does not parse is told and
// nothing is sent; Check POSTs a dry run and shows the counts; Import turns on only after a
// clean check of the same content (or with rows with errors skipped) and shows a generated
// password once; a body over the server's limit says to use `registrar import`.
import { flushPromises, mount } from "@vue/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../../api/client";
import ImportPanel from "./ImportPanel.vue";

const sent: { method: string; url: string; body: unknown }[] = [];
/** Answer each request with the next of `answers` (a body, or [status, body]). */
function answer(...answers: (unknown | [number, unknown])[]) {
  setTransport(async (url, init) => {
    sent.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined });
    const next = answers.shift();
    const [status, body] = Array.isArray(next) && typeof next[0] === "number" ? (next as [number, unknown]) : [200, next];
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  });
}
afterEach(() => (sent.length = 0));

const BODY = { courses: [{ code: "IMP101", title: "Imported", credits: 3 }] };
const counts = { kind: "courses", created: 1, updated: 0, unchanged: 0, failed: 0 };
const file = (over = {}) => ({ file: "body", applied: false, kinds: [counts], changes: [], api_changes: [], errors: [], ...over });
const button = (w: ReturnType<typeof mount>, name: string) => w.findAll("button").find((b) => b.text() === name)!;

describe("ImportPanel", () => {
  it("tells a JSON error and sends nothing", async () => {
    answer();
    const w = mount(ImportPanel, { props: { token: "tok" } });
    await w.get('textarea[name="import-json"]').setValue('{"courses": [');
    expect(w.get("#import-problem").text()).toMatch(/^This is not JSON: /);
    expect(button(w, "Check (dry run)").attributes("disabled")).toBeDefined();
    expect(button(w, "Import").attributes("disabled")).toBeDefined();
    expect(sent).toHaveLength(0);
  });

  it("checks, then imports the same content and shows the password once", async () => {
    answer(
      { dry_run: true, changed: 1, failed: 0, generated_password: null, files: [file()] },
      { dry_run: false, changed: 1, failed: 0, generated_password: "s3cret-pass", files: [file({ applied: true })] },
    );
    const w = mount(ImportPanel, { props: { token: "tok" } });
    await w.get('textarea[name="import-json"]').setValue(JSON.stringify(BODY, null, 2));
    expect(button(w, "Import").attributes("disabled")).toBeDefined();
    await button(w, "Check (dry run)").trigger("click");
    await flushPromises();
    expect(sent[0]).toEqual({ method: "POST", url: "/api/v1/imports?dry_run=true", body: BODY });
    expect(w.get('[data-testid="import-kinds"]').text()).toBe("courses: 1 created, 0 updated, 0 unchanged, 0 failed");
    expect(w.emitted("notice")?.[0]).toEqual(["Check passed: 1 record would change, no row has an error. Nothing was written.", "ok"]);
    expect(button(w, "Import").attributes("disabled")).toBeUndefined();
    await button(w, "Import").trigger("click");
    await flushPromises();
    expect(sent[1]).toEqual({ method: "POST", url: "/api/v1/imports", body: BODY });
    expect(w.get('[data-testid="import-password"]').text()).toContain("s3cret-pass");
    expect(w.get('[data-testid="import-password"]').text()).toContain("shown only now");
    // Once imported, importing again needs a new check.
    expect(button(w, "Import").attributes("disabled")).toBeDefined();
  });

  it("turns Import off when the content changes after the check, on with skipped rows", async () => {
    answer({ dry_run: true, changed: 1, failed: 0, generated_password: null, files: [file()] });
    const w = mount(ImportPanel, { props: { token: "tok" } });
    await w.get('textarea[name="import-json"]').setValue(JSON.stringify(BODY));
    await button(w, "Check (dry run)").trigger("click");
    await flushPromises();
    await w.get('textarea[name="import-json"]').setValue(JSON.stringify({ courses: [{ code: "IMP102", title: "Other", credits: 3 }] }));
    expect(button(w, "Import").attributes("disabled")).toBeDefined();
    await w.get('input[name="import-skip"]').setValue(true);
    expect(button(w, "Import").attributes("disabled")).toBeUndefined();
  });

  it("lists row errors and says a body over the limit goes to the command line", async () => {
    answer(
      { dry_run: true, changed: 0, failed: 1, generated_password: null, files: [file({ kinds: [{ ...counts, created: 0, failed: 1 }], errors: [{ kind: "courses", index: 0, line: 1, field: "credits", message: "0 to 12" }] })] },
      [413, { code: "payload_too_large", title: "Payload Too Large", status: 413 }],
    );
    const w = mount(ImportPanel, { props: { token: "tok" } });
    await w.get('textarea[name="import-json"]').setValue(JSON.stringify(BODY));
    await button(w, "Check (dry run)").trigger("click");
    await flushPromises();
    expect(w.get('[data-testid="import-errors"]').text()).toBe("courses[0] · credits: 0 to 12");
    expect(button(w, "Import").attributes("disabled")).toBeDefined();
    await button(w, "Check (dry run)").trigger("click");
    await flushPromises();
    expect(w.emitted("notice")?.[1]?.[1]).toBe("error");
    expect(String(w.emitted("notice")?.[1]?.[0])).toContain("registrar import");
  });
});
