// Unit tests of the console's deadlines editor: it reads the term's deadlines into local
// datetime-local fields, PUTs all three (an emptied one as null), says an out-of-order set
// before sending, and reports the server's refusal through the tab's notice.
import { flushPromises, mount } from "@vue/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../../api/client";
import DeadlinesEditor from "./DeadlinesEditor.vue";

const term = { id: "t1", code: "2099DL", name: "Deadline term" };
const addBy = new Date(2099, 0, 20, 23, 59).toISOString();
const dropBy = new Date(2099, 1, 3, 23, 59).toISOString();

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
const value = (w: ReturnType<typeof mount>, name: string) => (w.get(`input[name="${name}"]`).element as HTMLInputElement).value;

describe("DeadlinesEditor", () => {
  it("shows the term's deadlines and PUTs all three", async () => {
    answer({ add_by: addBy, drop_by: null, withdraw_by: null }, { add_by: addBy, drop_by: dropBy, withdraw_by: null });
    const w = mount(DeadlinesEditor, { props: { token: "tok", term } });
    await flushPromises();
    expect(sent[0]).toEqual({ method: "GET", url: "/api/v1/terms/t1/deadlines", body: undefined });
    expect(value(w, "add-by")).toBe("2099-01-20T23:59");
    expect(value(w, "drop-by")).toBe("");
    expect(w.text()).toContain("drop by not set");
    await w.get('input[name="drop-by"]').setValue("2099-02-03T23:59");
    await w.get('form[aria-label="Deadlines of 2099DL"]').trigger("submit");
    await flushPromises();
    expect(sent[1]).toEqual({ method: "PUT", url: "/api/v1/terms/t1/deadlines", body: { add_by: addBy, drop_by: dropBy, withdraw_by: null } });
    expect(w.emitted("notice")?.[0]?.[1]).toBe("ok");
    expect(String(w.emitted("notice")?.[0]?.[0])).toMatch(/^Deadlines of 2099DL: add by .+; drop by .+\.$/);
  });

  it("tells deadlines out of order and sends nothing", async () => {
    answer({ add_by: null, drop_by: null, withdraw_by: null });
    const w = mount(DeadlinesEditor, { props: { token: "tok", term } });
    await flushPromises();
    await w.get('input[name="add-by"]').setValue("2099-02-03T23:59");
    await w.get('input[name="withdraw-by"]').setValue("2099-01-20T23:59");
    expect(w.text()).toContain("The last day to withdraw must not be before the last day to add.");
    expect(w.get('button[type="submit"]').attributes("disabled")).toBeDefined();
    await w.get("form").trigger("submit");
    await flushPromises();
    expect(sent).toHaveLength(1);
  });

  it("reports a refusal through the notice", async () => {
    answer({ add_by: null, drop_by: null, withdraw_by: null }, [422, { code: "invalid_field", title: "Unprocessable", detail: "withdraw_by: must not be before drop_by" }]);
    const w = mount(DeadlinesEditor, { props: { token: "tok", term } });
    await flushPromises();
    await w.get('input[name="add-by"]').setValue("2099-01-20T23:59");
    await w.get("form").trigger("submit");
    await flushPromises();
    expect(w.emitted("notice")?.[0]).toEqual(["The deadlines were not saved: A value was not accepted. (withdraw_by: must not be before drop_by)", "error"]);
  });
});
