// Unit tests of the withdrawal question and the W list: the question says a W is left and
// only its confirm button drops; the list names each section withdrawn from and when.
import { mount } from "@vue/test-utils";
import { describe, expect, it } from "vitest";
import WithdrawConfirm from "./WithdrawConfirm.vue";
import WithdrawnList from "./WithdrawnList.vue";

describe("WithdrawConfirm", () => {
  it("says the drop leaves a W, and confirms or keeps the seat", async () => {
    const w = mount(WithdrawConfirm, { props: { what: "CS101-01" }, attachTo: document.body });
    expect(w.get('[role="alertdialog"]').attributes("aria-label")).toBe("Withdraw from CS101-01?");
    expect(w.text()).toContain("leaving CS101-01 now is a withdrawal, and your record will keep a W for it.");
    expect(document.activeElement?.textContent).toBe("Keep it");
    await w.findAll("button").find((b) => b.text() === "Keep it")!.trigger("click");
    expect(w.emitted("cancel")).toHaveLength(1);
    expect(w.emitted("confirm")).toBeUndefined();
    await w.findAll("button").find((b) => b.text() === "Withdraw (W)")!.trigger("click");
    expect(w.emitted("confirm")).toHaveLength(1);
    w.unmount();
  });
});

describe("WithdrawnList", () => {
  it("lists every W with its section and when", () => {
    const w = mount(WithdrawnList, {
      props: { items: [
        { section_id: "a", course_code: "CS101", section_code: "01", withdrawn_at: "2027-02-10T15:30:00Z" },
        { section_id: "b", course_code: "MATH2413", section_code: "02", withdrawn_at: "2027-02-11T09:00:00Z" },
      ] },
    });
    expect(w.get("h3").text()).toBe("Withdrawn (W)");
    const items = w.findAll("li");
    expect(items).toHaveLength(2);
    expect(items[0]!.text()).toMatch(/^CS101-01 · W on /);
    expect(items[1]!.get("time").attributes("datetime")).toBe("2027-02-11T09:00:00Z");
  });
});
