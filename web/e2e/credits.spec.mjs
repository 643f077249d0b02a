// Variable credits and grading bases in a real browser against a real server:
//   1. Through the admin API, in the seeded term (its windows are open): an independent
//      study taken for 1-4 credits (3 by default) under a letter grade, pass/fail or audit,
//      an art course of 4 credits by letter or audit, and a student whose limit is 6.
//   2. The section list shows the study's 1–4 credits. The student enrolls in it: the picker asks for credits and grading, preset to
//      3 and a letter grade; they pick 4 credits, pass/fail, and the schedule says so.
//   3. The art course by letter would make 8 credits of 6: refused, said on the page; audited
//      it is taken, and the schedule counts 4 credits plus 4 audited.
//   4. They change the study to 2 credits from the schedule; the page says so, and the API's
//      schedule agrees.
//   5. The console: an admin creates a course with a credit range and bases through the form,
//      the course list shows them, and the admin widens them from the list.
// axe-core runs on each view (no critical or serious finding). Screenshots go to
// target/e2e/credits-*.png. Run with `deploy/local/e2e.sh credits`.
import { BASE, accessible, call, check, login, shot } from "./lib.mjs";

const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
const PASSWORD = "credits-e2e-password";
const WAIT = { timeout: 15000 };

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function setUp(admin) {
  const run = String(Date.now() % 10000).padStart(4, "0");
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  const term = terms.find((t) => t.code === "2027SP");
  check(term, `the seeded term 2027SP among ${JSON.stringify(terms.map((t) => t.code))}`);
  const study = `IST${run}`;
  const art = `ARTA${run}`;
  await must(await call("POST", "/api/v1/courses", { token: admin, body: {
    code: study, title: "Independent Study", credits: 3, min_credits: 1, max_credits: 4, grading_bases: ["letter", "pass_fail", "audit"],
  } }), "the study course", 201);
  await must(await call("POST", "/api/v1/courses", { token: admin, body: {
    code: art, title: "Art Appreciation", credits: 4, grading_bases: ["audit", "letter"],
  } }), "the art course", 201);
  const sections = {};
  for (const [course, day] of [[study, "fri"], [art, "sat"]]) {
    const s = await must(await call("POST", "/api/v1/sections", { token: admin, body: {
      term_id: term.id, course_code: course, section_code: "01", capacity: 10, waitlist_capacity: 0,
      meetings: [{ day, start: "09:00", end: "10:15" }],
    } }), `section of ${course}`, 201);
    sections[course] = s;
  }
  const username = `cred-${run}`;
  const made = await must(await call("POST", "/api/v1/students", { token: admin, body: {
    username, password: PASSWORD, standing: "senior", max_credits: 6, completed_courses: [], role: "student",
  } }), "student", 201);
  return { term, termLabel: `${term.name} (${term.code})`, study, art, sections, run, student: { username, id: made.id, token: await login(username, PASSWORD) } };
}

async function search(page, course) {
  await page.getByLabel("Course or title").fill(course);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.locator(`tr[data-section="${course}-01"]`).waitFor(WAIT);
}

async function studentSteps(browser, ctx) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill(ctx.student.username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Signed in as").waitFor(WAIT);
  await page.getByLabel("Term").selectOption({ label: ctx.termLabel });
  const status = (text) => page.getByRole("status").filter({ hasText: text }).waitFor(WAIT);
  const mine = page.getByLabel("My sections");

  // 2. The picker, preset to the course's credits and a letter grade.
  await search(page, ctx.study);
  const row = page.locator(`tr[data-section="${ctx.study}-01"]`);
  check((await row.locator("td.credits").innerText()).trim() === "1–4", `the list shows the range: ${await row.locator("td.credits").innerText()}`);
  await page.getByRole("button", { name: `Enroll ${ctx.study}-01`, exact: true }).click();
  const dialog = page.getByRole("dialog", { name: new RegExp(`Enroll in ${ctx.study}-01`) });
  await dialog.waitFor(WAIT);
  const credits = dialog.getByTestId("credits");
  check((await credits.inputValue()) === "3", `preset to the course's 3 credits: ${await credits.inputValue()}`);
  check(await dialog.getByRole("radio", { name: "Letter grade" }).isChecked(), "preset to a letter grade");
  await credits.selectOption("4");
  await dialog.getByRole("radio", { name: "Pass/fail" }).check();
  await shot(page, "credits-picker");
  await accessible(page, "the credits and grading picker");
  await dialog.getByRole("button", { name: "Enroll", exact: true }).click();
  await status(`You are enrolled in ${ctx.study}-01.`);
  await mine.getByText("enrolled · 4 credits, pass/fail").waitFor(WAIT);

  // 3. Graded, the art course is over the limit; audited, it is taken.
  await search(page, ctx.art);
  await page.getByRole("button", { name: `Enroll ${ctx.art}-01`, exact: true }).click();
  const art = page.getByRole("dialog", { name: new RegExp(`Enroll in ${ctx.art}-01`) });
  await art.waitFor(WAIT);
  check(!(await art.getByTestId("credits").isVisible()), "a fixed course offers no credit choice");
  check(await art.getByRole("radio", { name: "Letter grade" }).isChecked(), "letter is the default where allowed");
  await art.getByRole("button", { name: "Enroll", exact: true }).click();
  await page.getByRole("alert").filter({ hasText: "over your credit limit" }).waitFor(WAIT);
  await shot(page, "credits-over-limit");
  await page.getByRole("button", { name: `Enroll ${ctx.art}-01`, exact: true }).click();
  await art.waitFor(WAIT);
  await art.getByRole("radio", { name: "Audit (no credit)" }).check();
  await art.getByText("does not count toward your credit limit").waitFor(WAIT);
  await art.getByRole("button", { name: "Enroll", exact: true }).click();
  await status(`You are enrolled in ${ctx.art}-01.`);
  await page.getByTestId("schedule-credits").filter({ hasText: "4 credits + 4 audited" }).waitFor(WAIT);
  await mine.getByText("enrolled · 4 credits, audited (no credit)").waitFor(WAIT);
  await shot(page, "credits-audited");

  // 4. The study changed to 2 credits from the schedule.
  await mine.getByRole("button", { name: `Credits & grading of ${ctx.study}-01` }).click();
  const change = page.getByRole("dialog", { name: new RegExp(`Change ${ctx.study}-01`) });
  await change.waitFor(WAIT);
  check((await change.getByTestId("credits").inputValue()) === "4", "the change starts from the place's 4 credits");
  await change.getByTestId("credits").selectOption("2");
  await change.getByRole("button", { name: "Save" }).click();
  await status(`${ctx.study}-01 is now taken for 2 credits, pass/fail.`);
  await mine.getByText("enrolled · 2 credits, pass/fail").waitFor(WAIT);
  await page.getByTestId("schedule-credits").filter({ hasText: "2 credits + 4 audited" }).waitFor(WAIT);
  const schedule = await must(await call("GET", "/api/v1/students/me/schedule", { token: ctx.student.token }), "schedule", 200);
  const study = schedule.enrolled.find((e) => e.section_id === ctx.sections[ctx.study].id);
  check(study?.credits === 2 && study.grading_basis === "pass_fail", `the API's schedule agrees: ${JSON.stringify(schedule)}`);
  check(schedule.credits === 2 && schedule.audit_credits === 4, `totals: ${JSON.stringify(schedule)}`);
  await shot(page, "credits-changed");
  await accessible(page, "the student page with audited and variable credits");
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}

async function consoleSteps(browser, ctx) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  const form = page.getByRole("region", { name: "New course" });
  await form.waitFor(WAIT);
  const code = `SEMR${ctx.run}`;
  await form.locator('input[name="course-code"]').fill(code);
  await form.locator('input[name="course-title"]').fill("Research Seminar");
  await form.locator('input[name="course-credits"]').fill("2");
  await form.locator('input[name="course-min-credits"]').fill("1");
  await form.locator('input[name="course-max-credits"]').fill("6");
  await form.locator('input[name="grading-pass_fail"]').check();
  await form.getByRole("button", { name: "Create course" }).click();
  const row = form.locator(`tr[data-course="${code}"]`);
  await row.waitFor(WAIT);
  await row.getByText("1–6 (2 by default)").waitFor(WAIT);
  await row.getByText("letter, pass/fail").waitFor(WAIT);
  // Changed from the list: up to 8 credits, audit allowed too.
  await row.getByRole("button", { name: `Credits & grading of ${code}` }).click();
  const edit = form.getByRole("form", { name: `Credits and grading of ${code}` });
  await edit.locator('input[name="edit-max-credits"]').fill("8");
  await edit.locator('input[name="edit-grading-audit"]').check();
  await edit.getByRole("button", { name: "Save credits and grading" }).click();
  await page.getByRole("status").getByText(`${code} is now taken for 1–8 (2 by default) credits`).waitFor(WAIT);
  await row.getByText("letter, pass/fail, audit").waitFor(WAIT);
  await shot(page, "credits-console");
  await accessible(page, "the console's course form with credits and grading");
  await context.close();
}

export async function run(browser) {
  const admin = await login("admin", ADMIN_PW);
  const ctx = await setUp(admin);
  await studentSteps(browser, ctx);
  await consoleSteps(browser, ctx);
}
