// The operator console in a real browser against a real server: an operator logs in, sees
// the node, watches the decisions-per-second chart move while students enroll through the
// API, finds the hottest section listed, and has the move/drain/rebalance controls behind a
// confirmation; an admin changes a section's capacity (a refusal below the seats taken
// first) and puts a hold on a student and lifts it; then creates a course taken as lecture +
// lab with a corequisite (a refusal of its own code as corequisite first), two lectures and
// a lab linked to one, edits the lab's links and sees them listed on both sides. axe-core
// must find no critical or serious violation on the login form, the cluster tab and the
// admin tab (also with the links editor open). Screenshots go to
// target/e2e/console-*.png; with E2E_DOC_SHOTS=1 the cluster tab under load is also saved
// to docs/images/console.png.
import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { BASE, accessible, call, check, eventually, login, shot } from "./lib.mjs";

const STUDENT_PW = process.env.E2E_STUDENT_PASSWORD ?? "demo";
const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
const OPERATOR_PW = process.env.E2E_OPERATOR_PASSWORD ?? "operator-demo";
const DOC_SHOT = fileURLToPath(new URL("../../docs/images/console.png", import.meta.url));
const WAIT = { timeout: 15000 };

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Students s000101.. enroll into `section` and drop again, in waves, for about `ms`. */
async function load(section, ms) {
  const tokens = [];
  for (let i = 101; i <= 140; i++) tokens.push(await login(`s${String(i).padStart(6, "0")}`, STUDENT_PW));
  const end = Date.now() + ms;
  let decisions = 0;
  while (Date.now() < end) {
    await Promise.all(
      tokens.map(async (token) => {
        const path = `/api/v1/sections/${section}/enrollments`;
        const e = await call("POST", path, { token, headers: { "Idempotency-Key": crypto.randomUUID() } });
        if (e.status === 201 || e.status === 202) decisions += 1;
        const d = await call("DELETE", `${path}/me`, { token, headers: { "Idempotency-Key": crypto.randomUUID() } });
        if (d.status === 200) decisions += 1;
      }),
    );
  }
  return decisions;
}

export async function run(browser) {
  const admin = await login("admin", ADMIN_PW);
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  const termId = terms[0].id;
  await must(await call("POST", "/api/v1/courses", { token: admin, body: { code: "HOT101", title: "Hot Seats Lab", credits: 3, prerequisites: [] } }), "course", 201);
  const hot = await must(
    await call("POST", "/api/v1/sections", {
      token: admin,
      body: { term_id: termId, course_code: "HOT101", section_code: "01", capacity: 500, waitlist_capacity: 10, meetings: [{ day: "sat", start: "10:00", end: "11:00" }] },
    }),
    "hot section",
    201,
  );

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // A student is turned away from the console.
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("s000001");
  await page.getByLabel("Password").fill(STUDENT_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").getByText("operators and admins").waitFor(WAIT);
  await accessible(page, "console login (refused)");

  // The operator sees the node, its shards and the empty charts.
  await page.getByLabel("Username").fill("operator");
  await page.getByLabel("Password").fill(OPERATOR_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  const nodeRow = page.locator('tr[data-node="e2e"]');
  await nodeRow.waitFor(WAIT);
  await nodeRow.getByText("active").waitFor(WAIT);
  check((await nodeRow.innerText()).includes("coordinator"), "the only node is the coordinator");
  await page.getByRole("img", { name: /e2e owns \d+/ }).waitFor(WAIT);
  await shot(page, "console-1-quiet");
  await accessible(page, "console cluster tab");

  // Under load the decisions/s readout (the chart's latest point) rises above zero.
  const readout = page.locator('[data-testid="chart-decisions_per_s"] .value[data-node="e2e"]');
  const loading = load(hot.id, 9000);
  const seen = await eventually(async () => {
    const text = await readout.innerText();
    const v = Number(text);
    return Number.isFinite(v) && v > 0 ? v : null;
  }, "the decisions/s chart moves", 20000);
  // The hottest section is listed by its name, on this node.
  await page.getByLabel("Hottest sections").getByText("HOT101-01").waitFor({ timeout: 20000 });
  const points = await page.evaluate(() => document.querySelectorAll('[data-testid="chart-decisions_per_s"] canvas').length);
  check(points === 1, "the chart is drawn");
  if (process.env.E2E_DOC_SHOTS === "1") {
    // A few more seconds of load, so the picture shows a curve rather than a first point.
    await page.waitForTimeout(4000);
    mkdirSync(dirname(DOC_SHOT), { recursive: true });
    await page.screenshot({ path: DOC_SHOT });
    console.log(`e2e: screenshot ${DOC_SHOT}`);
  }
  await shot(page, "console-2-under-load");
  const decided = await loading;
  check(decided > 0, "the load made decisions");
  console.log(`e2e: console saw ${seen} decisions/s while ${decided} decisions were made`);

  // The operator's controls ask before they act; a rebalance of one node moves nothing.
  await page.getByRole("button", { name: "Rebalance" }).click();
  await page.getByRole("alertdialog", { name: /Rebalance the shards/ }).waitFor(WAIT);
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByRole("button", { name: "Rebalance" }).click();
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByRole("status").getByText("Rebalance started").waitFor(WAIT);
  // Moving a shard to the node that owns it is refused with the server's reason.
  await page.locator('input[name="shard"]').fill("0");
  await page.locator('select[name="to"]').selectOption("e2e");
  await page.getByRole("button", { name: "Move shard" }).click();
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByRole("alert").getByText("Moving shard 0 failed").waitFor(WAIT);
  await shot(page, "console-3-controls");
  await accessible(page, "console cluster tab (controls used)");
  await page.getByRole("button", { name: "Log out" }).click();

  // The admin: capacity below the seats taken is refused, a raise is taken.
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  await page.getByLabel("Course or title").fill("HOT101");
  await page.getByRole("button", { name: "Find sections" }).click();
  const row = page.locator('tr[data-section="HOT101-01"]');
  await row.waitFor(WAIT);
  const s0 = await must(await call("GET", `/api/v1/sections/${hot.id}`), "hot section", 200);
  const student = await login("s000150", STUDENT_PW);
  await must(await call("POST", `/api/v1/sections/${hot.id}/enrollments`, { token: student, headers: { "Idempotency-Key": crypto.randomUUID() } }), "one seat taken", 201);
  await row.getByLabel("Capacity of HOT101-01").fill("0");
  await row.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").getByText("below the seats already taken").waitFor(WAIT);
  await row.getByLabel("Capacity of HOT101-01").fill(String(s0.capacity + 25));
  await row.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").getByText(`now has ${s0.capacity + 25} seats`).waitFor(WAIT);
  const s1 = await must(await call("GET", `/api/v1/sections/${hot.id}`), "hot section", 200);
  check(s1.capacity === s0.capacity + 25, `capacity is ${s1.capacity}`);

  // A hold blocks the student; lifting it lets them register again.
  await page.getByLabel("Username").fill("s000150");
  await page.getByRole("button", { name: "Find", exact: true }).click();
  await page.getByText("No hold: this student may register.").waitFor(WAIT);
  await page.getByLabel("Reason").fill("Library fine");
  await page.getByRole("button", { name: "Add hold" }).click();
  await page.getByRole("status").getByText("Hold added on s000150").waitFor(WAIT);
  const other = await must(await call("GET", `/api/v1/terms/${termId}/sections?limit=1`), "a section", 200);
  const refused = await call("POST", `/api/v1/sections/${other.items[0].id}/enrollments`, { token: student, headers: { "Idempotency-Key": crypto.randomUUID() } });
  check(refused.status === 403 && refused.body.code === "student_on_hold", `held student: ${refused.status} ${JSON.stringify(refused.body)}`);
  await shot(page, "console-4-admin");
  await accessible(page, "console admin tab");
  await page.getByRole("button", { name: "Lift" }).click();
  await page.getByRole("status").getByText("lifted").waitFor(WAIT);
  await page.getByText("No hold: this student may register.").waitFor(WAIT);

  await linkedSections(page, termId);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}

/** The admin builds a lecture + lab course in the console and links its sections. */
async function linkedSections(page, termId) {
  const alert = page.getByRole("alert");
  const status = page.getByRole("status");
  // A course may not be its own corequisite: the server's detail is shown.
  await page.getByLabel("Course code").fill("LAB210");
  await page.getByLabel("Course title").fill("Cells and Tissues");
  await page.getByLabel("Credits").fill("4");
  await page.getByLabel("lecture", { exact: true }).check();
  await page.getByLabel("lab", { exact: true }).check();
  await page.getByText("Order: lecture, lab (lecture is the primary)").waitFor(WAIT);
  await page.getByLabel("Corequisites").fill("lab 210");
  await page.getByRole("button", { name: "Create course" }).click();
  await alert.getByText("The course was not created: A value was not accepted").waitFor(WAIT);
  console.log(`e2e: own corequisite refused: ${await alert.innerText()}`);
  await page.getByLabel("Corequisites").fill("hot 101");
  await page.getByRole("button", { name: "Create course" }).click();
  await status.getByText("Course LAB210 created as lecture + lab, with HOT101 in the same term").waitFor(WAIT);
  const courseRow = page.locator('tr[data-course="LAB210"]');
  await courseRow.getByText("lecture + lab").waitFor(WAIT);
  await courseRow.getByText("HOT101").waitFor(WAIT);

  // Two lectures, then a lab linked to the first; the form offers only the course's components.
  const form = page.getByRole("region", { name: "New section" });
  await form.getByLabel("Course of the section").fill("LAB210");
  await form.getByLabel("Course of the section").press("Tab");
  const options = await form.locator('select[name="section-component"] option').allInnerTexts();
  check(JSON.stringify(options) === JSON.stringify(["lecture (primary)", "lab"]), `component choices: ${options}`);
  for (const code of ["01", "02"]) {
    await form.getByLabel("Section code").fill(code);
    await form.locator('select[name="section-component"]').selectOption("lecture");
    await form.getByRole("button", { name: "Create section" }).click();
    await status.getByText(`Section LAB210-${code} (lecture) created.`).waitFor(WAIT);
  }
  await form.getByLabel("Section code").fill("L1");
  await form.locator('select[name="section-component"]').selectOption("lab");
  await form.getByLabel("LAB210-01 (lecture)", { exact: true }).check();
  check((await form.getByRole("checkbox", { name: /LAB210-/ }).count()) === 2, "a lab is offered the two lectures only");
  await form.getByRole("button", { name: "Create section" }).click();
  await status.getByText("Section LAB210-L1 (lab) created, linked to 01 (lecture).").waitFor(WAIT);

  // Listed with their components and links, both sides.
  await page.getByLabel("Course or title").fill("LAB210");
  await page.getByRole("button", { name: "Find sections" }).click();
  const row = (code) => page.locator(`tr[data-section="LAB210-${code}"]`);
  await row("L1").locator('[data-testid="links"]').getByText("01 (lecture)", { exact: true }).waitFor(WAIT);
  await row("01").locator('[data-testid="links"]').getByText("L1 (lab)", { exact: true }).waitFor(WAIT);
  check((await row("02").locator('[data-testid="links"]').innerText()) === "—", "02 is unlinked");
  check((await row("L1").innerText()).includes("lab"), "L1 is a lab");

  // Edit links: the lab goes with both lectures.
  await row("L1").getByRole("button", { name: "Edit links" }).click();
  const editor = page.getByRole("form", { name: "Links of LAB210-L1" });
  await editor.getByLabel("LAB210-02 (lecture)").check();
  await shot(page, "console-5-links-editor");
  await accessible(page, "console admin tab (links editor)");
  await editor.getByRole("button", { name: "Save links" }).click();
  await status.getByText("LAB210-L1 is now linked to 01 (lecture), 02 (lecture).").waitFor(WAIT);
  await row("L1").locator('[data-testid="links"]').getByText("01 (lecture), 02 (lecture)").waitFor(WAIT);
  await row("02").locator('[data-testid="links"]').getByText("L1 (lab)", { exact: true }).waitFor(WAIT);
  const listed = await must(await call("GET", `/api/v1/terms/${termId}/sections?course=LAB210`), "LAB210 sections", 200);
  const byCode = Object.fromEntries(listed.items.map((s) => [s.section_code, s]));
  check(byCode.L1.component === "lab" && byCode.L1.links.length === 2, `L1: ${JSON.stringify(byCode.L1)}`);
  check(JSON.stringify(byCode["01"].components) === '["lecture","lab"]' && byCode["01"].corequisites[0] === "HOT101", `01: ${JSON.stringify(byCode["01"])}`);
  // What the form never offers, the server refuses with a reason: a lecture linked to a lecture.
  const bad = await call("PUT", `/api/v1/sections/${byCode["01"].id}/links`, { token: await login("admin", ADMIN_PW), body: { links: [byCode["02"].id] } });
  check(bad.status === 422 && bad.body.code === "invalid_field" && bad.body.detail, `lecture to lecture: ${bad.status} ${JSON.stringify(bad.body)}`);
  console.log(`e2e: lecture linked to a lecture refused: ${bad.status} ${bad.body.code}: ${bad.body.detail}`);
  await shot(page, "console-6-linked");
  await accessible(page, "console admin tab (linked sections)");
}
