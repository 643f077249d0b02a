// Unit tests of a student's policy in the console: the attributes go out as one PATCH
// (upper case, a blank program cleared), the appointment as a PUT of RFC 3339 or a DELETE.
import { flushPromises, mount } from "@vue/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../../api/client";
import type { Account } from "../../console/api";
import StudentPolicy from "./StudentPolicy.vue";

const account: Account = { id: "u1", username: "pol-cs", role: "student", standing: "senior", max_credits: 18, majors: ["CS"], program: "BS-CS", cohort: null };
const term = { id: "t1", code: "2099PO", name: "Policy term" };

const sent: { method: string; url: string; body: unknown }[] = [];
function answer(body: unknown, status = 200) {
  setTransport(async (url, init) => {
    sent.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined });
    return status === 204 ? new Response(null, { status }) : new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  });
}
afterEach(() => (sent.length = 0));

describe("StudentPolicy", () => {
  it("PATCHes majors, program and cohort", async () => {
    const w = mount(StudentPolicy, { props: { token: "tok", account, term } });
    expect((w.get('input[name="majors"]').element as HTMLInputElement).value).toBe("CS");
    await w.get('input[name="majors"]').setValue("cs, math");
    await w.get('input[name="program"]').setValue(" ");
    await w.get('input[name="cohort"]').setValue("honors");
    answer({ ...account, majors: ["CS", "MATH"], program: null, cohort: "HONORS" });
    await w.get('form[aria-label="Attributes of pol-cs"]').trigger("submit");
    await flushPromises();
    expect(sent).toEqual([{ method: "PATCH", url: "/api/v1/students/u1", body: { majors: ["CS", "MATH"], program: null, cohort: "HONORS" } }]);
    expect(w.emitted("notice")?.[0]).toEqual(["pol-cs: majors CS, MATH; program none; cohort HONORS.", "ok"]);
    expect(w.emitted("updated")?.[0]?.[0]).toMatchObject({ majors: ["CS", "MATH"] });
  });

  it("sets the appointment in the term as RFC 3339, and clears it", async () => {
    const w = mount(StudentPolicy, { props: { token: "tok", account, term } });
    await w.get('input[name="appointment"]').setValue("2099-01-02T09:30");
    const at = new Date(2099, 0, 2, 9, 30).toISOString();
    answer({ term_id: "t1", student_id: "u1", opens_at: at });
    await w.get('form[aria-label="Registration appointment of pol-cs"]').trigger("submit");
    await flushPromises();
    expect(sent).toEqual([{ method: "PUT", url: "/api/v1/terms/t1/time-tickets/u1", body: { opens_at: at } }]);
    expect(w.text()).toContain("Appointment in 2099PO: opens");
    answer(undefined, 204);
    await w.findAll("button").find((b) => b.text() === "Clear appointment")!.trigger("click");
    await flushPromises();
    expect(sent[1]).toEqual({ method: "DELETE", url: "/api/v1/terms/t1/time-tickets/u1", body: undefined });
    expect(w.text()).toContain("No appointment in 2099PO.");
  });

  it("tells more than five majors before sending", async () => {
    const w = mount(StudentPolicy, { props: { token: "tok", account, term } });
    await w.get('input[name="majors"]').setValue("A B C D E F");
    expect(w.text()).toContain("At most 5 majors.");
    answer({});
    await w.get('form[aria-label="Attributes of pol-cs"]').trigger("submit");
    await flushPromises();
    expect(sent).toHaveLength(0);
  });
});
