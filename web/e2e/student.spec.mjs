// The student page in a real browser against a real server: a student logs in, watches a
// section's seat count fall while OTHER students enroll through the API, enrolls (through an
// injected `overloaded` answer, retried with the same Idempotency-Key), joins the
// waitlist of a full section and sees the position, reads a refusal, swaps sections, drops,
// sees the notifications, and is sent back to login when the session breaks. Screenshots of
// each step go to target/e2e/student-*.png. On a phone (390 × 844) the page must not scroll
// sideways and every button must lie on screen (target/e2e/student-phone.png); axe-core
// must find no critical or serious violation on any view. With E2E_DOC_SHOTS=1 the pages as
// the README shows them are also saved to docs/images/student.png and student-phone.png.
import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { BASE, accessible, call, check, login, shot } from "./lib.mjs";

const STUDENT_PW = process.env.E2E_STUDENT_PASSWORD ?? "demo";
const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
const DOC_SHOT = fileURLToPath(new URL("../../docs/images/student.png", import.meta.url));
const PHONE_DOC_SHOT = fileURLToPath(new URL("../../docs/images/student-phone.png", import.meta.url));
const WAIT = { timeout: 15000 };

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A course with its sections, made through the admin API (the catalog is fresh per run). */
async function makeCourse(admin, termId, code, title, sections) {
  const c = await call("POST", "/api/v1/courses", { token: admin, body: { code, title, credits: 3, prerequisites: [] } });
  await must(c, `create course ${code}`, 201);
  const ids = {};
  for (const s of sections) {
    const r = await call("POST", "/api/v1/sections", {
      token: admin,
      body: { term_id: termId, course_code: code, section_code: s.code, capacity: s.capacity, waitlist_capacity: 5, meetings: s.meetings },
    });
    ids[s.code] = (await must(r, `create section ${code}-${s.code}`, 201)).id;
  }
  return ids;
}

async function enrollAs(username, sectionId, expected) {
  const token = await login(username, STUDENT_PW);
  const r = await call("POST", `/api/v1/sections/${sectionId}/enrollments`, { token, headers: { "Idempotency-Key": crypto.randomUUID() } });
  return must(r, `${username} enrolls`, expected);
}

/** The student page at 390 × 844, logged in, with a result list holding Enroll buttons. */
async function phone(browser) {
  const width = 390;
  const context = await browser.newContext({ viewport: { width, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill("s000001");
  await page.getByLabel("Password").fill(STUDENT_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("● live seats").waitFor(WAIT);
  await page.getByLabel("Course or title").fill("LIVE");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.getByLabel("Seats of LIVE101-01").waitFor(WAIT);
  await page.getByLabel("My sections").getByText("LIVE101-02", { exact: true }).waitFor(WAIT);
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scrollWidth <= width, `no horizontal scroll at ${width} px: the page is ${scrollWidth} px wide`);
  const enroll = page.getByRole("button", { name: /^Enroll / }).first();
  const box = await enroll.boundingBox();
  check(box && box.x >= 0 && box.x + box.width <= width, `the first Enroll button lies within ${width} px: ${JSON.stringify(box)}`);
  // Every button of the page, not only the first: Enroll, Drop, Leave, Swap, the paging.
  const outside = await page.evaluate((w) => [...document.querySelectorAll("button")]
    .map((b) => ({ name: b.textContent.trim(), r: b.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && (r.left < 0 || r.right > w))
    .map(({ name, r }) => `${name} (${Math.round(r.left)}–${Math.round(r.right)})`), width);
  check(outside.length === 0, `buttons beyond ${width} px: ${outside.join(", ")}`);
  await accessible(page, "student page on a phone");
  await shot(page, "student-phone");
  if (process.env.E2E_DOC_SHOTS === "1") {
    await page.screenshot({ path: PHONE_DOC_SHOT });
    console.log(`e2e: screenshot ${PHONE_DOC_SHOT}`);
  }
  await context.close();
}

export async function run(browser) {
  const admin = await login("admin", ADMIN_PW);
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  const termId = terms[0].id;
  const live = await makeCourse(admin, termId, "LIVE101", "Live Seats Studio", [
    { code: "01", capacity: 30, meetings: [{ day: "mon", start: "09:00", end: "09:50" }, { day: "wed", start: "09:00", end: "09:50" }] },
    { code: "02", capacity: 30, meetings: [{ day: "tue", start: "13:00", end: "14:15" }, { day: "thu", start: "13:00", end: "14:15" }] },
  ]);
  const wait = await makeCourse(admin, termId, "WAIT101", "Waitlist Seminar", [
    { code: "01", capacity: 1, meetings: [{ day: "fri", start: "15:00", end: "16:50" }] },
  ]);
  // The seminar is full (one seat, taken) and one student already waits: ours will be second.
  await enrollAs("s000002", wait["01"], 201);
  check((await enrollAs("s000004", wait["01"], 202)).position === 1, "s000004 is first on the waitlist");

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const status = (text) => page.getByRole("status").filter({ hasText: text }).waitFor(WAIT);
  const search = async (q) => {
    await page.getByLabel("Course or title").fill(q);
    await page.getByRole("button", { name: "Search", exact: true }).click();
  };
  const liveSeats = () => page.getByText("● live seats").waitFor(WAIT);

  // Log in.
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").waitFor(WAIT);
  await accessible(page, "student login");
  await page.getByLabel("Username").fill("s000001");
  await page.getByLabel("Password").fill(STUDENT_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Signed in as").waitFor(WAIT);
  await liveSeats();
  await shot(page, "student-1-logged-in");

  // Live seat counts: two other students enroll through the API; the page follows.
  await search("live101");
  const seats01 = page.getByLabel("Seats of LIVE101-01");
  await seats01.filter({ hasText: /^\s*30 of 30\s*$/ }).waitFor(WAIT);
  await liveSeats();
  // The counts come over the one open stream: the page sends no request for them.
  const requests = [];
  const onRequest = (r) => requests.push(r.url());
  page.on("request", onRequest);
  await enrollAs("s000003", live["01"], 201);
  await enrollAs("s000005", live["01"], 201);
  await seats01.filter({ hasText: /^\s*28 of 30\s*$/ }).waitFor(WAIT);
  page.off("request", onRequest);
  check(!requests.some((u) => u.includes("/sections") || u.includes("/seats/stream")), `no request for seat counts: ${requests.join(" ")}`);
  await shot(page, "student-2-live-seats");

  // Enroll. The first answer is made a 503 `overloaded` in the browser's network: the page
  // says it is still trying and retries after Retry-After with the SAME Idempotency-Key.
  const keys = [];
  const enrollRoute = "**/api/v1/sections/*/enrollments";
  await page.route(enrollRoute, async (route) => {
    const request = route.request();
    if (request.method() !== "POST") return route.continue();
    keys.push(request.headers()["idempotency-key"]);
    if (keys.length > 1) return route.continue();
    return route.fulfill({
      status: 503,
      contentType: "application/problem+json",
      headers: { "Retry-After": "1" },
      body: JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503, code: "overloaded", detail: "injected by the e2e test" }),
    });
  });
  await page.getByRole("button", { name: "Enroll LIVE101-01", exact: true }).click();
  await page.getByRole("button", { name: "Still trying… LIVE101-01", exact: true }).waitFor(WAIT);
  await status("The server is busy right now");
  await shot(page, "student-3a-still-trying");
  await status("You are enrolled in LIVE101-01.");
  await page.unroute(enrollRoute);
  check(keys.length === 2 && /^[0-9a-f-]{36}$/.test(keys[0]) && keys[0] === keys[1], `one Idempotency-Key for both tries: ${JSON.stringify(keys)}`);
  await seats01.filter({ hasText: /^\s*27 of 30\s*$/ }).waitFor(WAIT);
  await page.getByLabel("My sections").getByText("LIVE101-01", { exact: true }).waitFor(WAIT);
  await page.getByRole("heading", { name: /My schedule · 3 credits/ }).waitFor(WAIT);
  await shot(page, "student-3-enrolled");

  // A refusal reads as advice: a second section of the same course.
  await page.getByRole("button", { name: "Enroll LIVE101-02", exact: true }).click();
  await page.getByRole("alert").filter({ hasText: "You already have a section of this course" }).waitFor(WAIT);
  await shot(page, "student-4-refused");
  await accessible(page, "student page (a refusal)");

  // The full seminar: the student joins its waitlist and sees the position.
  await search("waitlist seminar");
  await page.getByLabel("Seats of WAIT101-01").filter({ hasText: /^\s*0 of 1\s*$/ }).waitFor(WAIT);
  // One decision, one read of the schedule, even when its notification arrives later
  // (the page has seen the earlier notifications, so this one is news to it).
  await page.getByLabel("Notifications").getByText("Enrolled in LIVE101-01").waitFor(WAIT);
  const scheduleReads = [];
  const onScheduleRead = (r) => r.url().endsWith("/students/me/schedule") && scheduleReads.push(r.url());
  page.on("request", onScheduleRead);
  await page.getByRole("button", { name: "Join waitlist WAIT101-01", exact: true }).click();
  await status("number 2 in line");
  await page.getByLabel("Notifications").getByText("Waitlisted for WAIT101-01").waitFor(WAIT);
  // The follow-up poll of notifications comes seconds after anything that poll set off.
  await page.waitForRequest((r) => r.url().endsWith("/students/me/notifications"), WAIT);
  page.off("request", onScheduleRead);
  check(scheduleReads.length === 1, `one schedule read per decision, not ${scheduleReads.length}`);
  await page.getByLabel("My sections").getByText("waitlist position 2").waitFor(WAIT);
  await page.getByText("Waitlist #2").waitFor(WAIT);
  await page.getByLabel("Waitlist of WAIT101-01").filter({ hasText: /^\s*2\s*$/ }).waitFor(WAIT);
  await shot(page, "student-5-waitlisted");
  await accessible(page, "student page (results, schedule, notifications)");

  // The filters go to the server: open seats only hides the full seminar; a day keeps only
  // the sections meeting then; an evening start leaves nothing of LIVE101.
  await page.getByLabel("Open seats only").check();
  await search("waitlist seminar");
  await page.getByText("No section matches.").waitFor(WAIT);
  await page.getByLabel("Open seats only").uncheck();
  await page.getByLabel("Day", { exact: true }).selectOption("tue");
  await search("LIVE");
  await page.getByLabel("Seats of LIVE101-02").waitFor(WAIT);
  check((await page.getByLabel("Seats of LIVE101-01").count()) === 0, "LIVE101-01 does not meet on Tuesday");
  await page.getByLabel("Day", { exact: true }).selectOption("");
  await page.getByLabel("Starts after").fill("18:00");
  await search("LIVE");
  await page.getByText("No section matches.").waitFor(WAIT);
  await page.getByLabel("Starts after").fill("");

  // Swap LIVE101-01 for LIVE101-02 in one step.
  await search("LIVE");
  await page.getByLabel("Seats of LIVE101-01").waitFor(WAIT);
  await page.getByLabel("Seats of LIVE101-02").waitFor(WAIT);
  await page.getByLabel("Give up").selectOption({ label: "LIVE101-01" });
  await page.getByLabel("Take instead").selectOption({ label: "LIVE101-02" });
  await page.getByRole("button", { name: "Swap", exact: true }).click();
  await status("Swapped: you left LIVE101-01 and are enrolled in LIVE101-02.");
  await page.getByLabel("Seats of LIVE101-02").filter({ hasText: /^\s*29 of 30\s*$/ }).waitFor(WAIT);
  await seats01.filter({ hasText: /^\s*28 of 30\s*$/ }).waitFor(WAIT);
  await page.getByLabel("My sections").getByText("LIVE101-02", { exact: true }).waitFor(WAIT);
  // Notifications arrive through the event consumer, newest first.
  await page.getByLabel("Notifications").getByText("LIVE101-02").first().waitFor({ timeout: 30000 });
  await shot(page, "student-6-swapped");

  // On a phone (390 × 844): no sideways scrolling, and every action button on screen.
  await phone(browser);

  // The page as the README shows it: a full result list and a schedule.
  if (process.env.E2E_DOC_SHOTS === "1") {
    // Two more courses, taken through the API as from another device (the first two of the
    // catalog this student may take), then a fresh load of the page.
    const me = await login("s000001", STUDENT_PW);
    const all = await must(await call("GET", `/api/v1/terms/${termId}/sections?limit=60`), "sections", 200);
    let taken = 0;
    for (const s of all.items) {
      if (taken === 2) break;
      const r = await call("POST", `/api/v1/sections/${s.id}/enrollments`, { token: me, headers: { "Idempotency-Key": crypto.randomUUID() } });
      if (r.status === 201) taken += 1;
    }
    check(taken === 2, "two more courses for the picture");
    await page.reload();
    await page.getByRole("heading", { name: /My schedule · \d+ credits/ }).waitFor(WAIT);
    await page.getByLabel("My sections").getByText("waitlist position 2").waitFor(WAIT);
    await liveSeats();
    await page.getByLabel("Notifications").getByText("LIVE101-02").first().waitFor(WAIT);
    mkdirSync(dirname(DOC_SHOT), { recursive: true });
    await page.screenshot({ path: DOC_SHOT });
    console.log(`e2e: screenshot ${DOC_SHOT}`);
  }

  // Drop the waitlist place: it leaves the schedule (the drop route serves seats and places alike).
  await page.getByRole("button", { name: "Leave the waitlist of WAIT101-01", exact: true }).click();
  await status("You dropped WAIT101-01.");
  await page.getByLabel("My sections").getByText("WAIT101-01", { exact: true }).waitFor({ state: "detached", ...WAIT });
  await shot(page, "student-7-dropped");

  // The server agrees with what the page shows.
  const me = await login("s000001", STUDENT_PW);
  const schedule = await must(await call("GET", "/api/v1/students/me/schedule", { token: me }), "schedule", 200);
  const enrolled = schedule.enrolled.map((e) => `${e.course_code}-${e.section_code}`);
  check(enrolled.includes("LIVE101-02") && !enrolled.includes("LIVE101-01"), `schedule: ${JSON.stringify(schedule)}`);
  check(schedule.waitlisted.length === 0, "no waitlist place left");

  // An expired or forged session (here: a token whose signature no longer matches) sends
  // the student back to the login form with a reason, not to a broken page.
  await page.evaluate(() => {
    const key = "registrar.session.student";
    const saved = JSON.parse(sessionStorage.getItem(key));
    saved.token = `${saved.token.slice(0, -6)}AAAAAA`;
    sessionStorage.setItem(key, JSON.stringify(saved));
  });
  await page.reload();
  await page.getByRole("alert").filter({ hasText: "Your session has expired" }).waitFor(WAIT);
  await shot(page, "student-8-session-expired");
  await accessible(page, "student login (session expired)");

  // Log in again, then log out: back to the login form.
  await page.getByLabel("Username").fill("s000001");
  await page.getByLabel("Password").fill(STUDENT_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByLabel("My sections").getByText("LIVE101-02", { exact: true }).waitFor(WAIT);
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor(WAIT);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}
