// Unit tests of "Edit reserved seats": the section's pools fill the rows, a pool added and
// saved goes out as one PUT of every pool (values upper case), and more reserved seats than
// the section has are told before anything is sent.
import { flushPromises, mount } from "@vue/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../../api/client";
import type { Section } from "../../console/api";
import ReservedEditor from "./ReservedEditor.vue";

const section: Section = {
  id: "s1", term_id: "t", course_code: "POL101", section_code: "01", title: "Policy", capacity: 3, seats_taken: 1, seats_left: 2,
  waitlist_capacity: 0, waitlist_length: 0, component: "lecture", links: [], components: [], corequisites: [],
  reserved: [{ id: "p1", attribute: "major", value: "CS", seats: 1, taken: 0, seats_left: 1, release_at: null, released: false }],
};

const sent: { method: string; url: string; body: unknown }[] = [];
function answer(body: unknown, status = 200) {
  setTransport(async (url, init) => {
    sent.push({ method: init?.method ?? "GET", url: String(url), body: init?.body ? JSON.parse(String(init.body)) : undefined });
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  });
}
afterEach(() => (sent.length = 0));

describe("ReservedEditor", () => {
  it("fills the rows from the section and PUTs every pool", async () => {
    const w = mount(ReservedEditor, { props: { token: "tok", section } });
    expect((w.get('input[name="reserved-s1-1-value"]').element as HTMLInputElement).value).toBe("CS");
    await w.get("button[type=button]:not([disabled])").trigger("click"); // Remove pool 1
    expect(w.findAll("fieldset.pool")).toHaveLength(0);
    const add = w.findAll("button").find((b) => b.text() === "Add a reserved pool")!;
    await add.trigger("click");
    await w.get('select[name="reserved-s1-1-attribute"]').setValue("standing");
    await w.get('input[name="reserved-s1-1-value"]').setValue("senior");
    await w.get('input[name="reserved-s1-1-seats"]').setValue("2");
    const updated = { ...section, reserved: [{ id: "p2", attribute: "standing", value: "SENIOR", seats: 2, taken: 0, seats_left: 2, release_at: null, released: false }] };
    answer(updated);
    await w.get("form").trigger("submit");
    await flushPromises();
    expect(sent).toEqual([{ method: "PUT", url: "/api/v1/sections/s1/reserved", body: { reserved: [{ attribute: "standing", value: "SENIOR", seats: 2, release_at: null }] } }]);
    expect(w.emitted("notice")?.[0]).toEqual(["POL101-01 now has 2 seats reserved for seniors.", "ok"]);
    expect(w.emitted("saved")?.[0]?.[0]).toMatchObject({ id: "s1" });
  });

  it("says when the pools reserve more than the capacity, and sends nothing", async () => {
    const w = mount(ReservedEditor, { props: { token: "tok", section } });
    await w.get('input[name="reserved-s1-1-seats"]').setValue("4");
    expect(w.text()).toContain("The pools reserve 4 seats, more than the section's 3.");
    expect(w.findAll("button").find((b) => b.text() === "Save reserved seats")!.attributes("disabled")).toBeDefined();
    answer({});
    await w.get("form").trigger("submit");
    await flushPromises();
    expect(sent).toHaveLength(0);
  });

  it("shows the server's refusal", async () => {
    const w = mount(ReservedEditor, { props: { token: "tok", section } });
    answer({ type: "about:blank", title: "Unprocessable", status: 422, code: "invalid_field", detail: "reserved: too many seats" }, 422);
    await w.get("form").trigger("submit");
    await flushPromises();
    expect(w.emitted("notice")?.[0]).toEqual(["The reserved seats of POL101-01 were not saved: A value was not accepted. (reserved: too many seats)", "error"]);
  });
});
