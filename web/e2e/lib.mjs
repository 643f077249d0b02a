// Shared pieces of the end-to-end tests: launching Debian's Chromium through playwright-core,
// calling the API directly (as other students and operators would), screenshots, and checks.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const BASE = process.env.E2E_BASE_URL ?? "http://127.0.0.1:8080";
export const OUT = process.env.E2E_OUT ?? "target/e2e";

/** Content Security Policy violations seen on any page since the last `takeViolations()`. */
const violations = [];

/** The violations seen since the last call (run.mjs fails the spec that caused any). */
export function takeViolations() {
  return violations.splice(0);
}

/** Record every CSP violation of `page`: Chromium's console report and the DOM event. */
function watchPolicy(page) {
  page.on("console", (msg) => {
    const text = msg.text();
    if (/content security policy|securitypolicyviolation/i.test(text)) violations.push(`${page.url()}: ${text}`);
  });
}

/** The same for every page of `context`, including the pages it opens later. */
async function watchContext(context) {
  // Injected through the DevTools protocol, so the page's own policy does not block it.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`securitypolicyviolation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  context.on("page", watchPolicy);
  for (const page of context.pages()) watchPolicy(page);
}

/** Chromium as this machine can run it: headless, no sandbox (root), no network chatter.
 * Every page it opens is watched for Content Security Policy violations. */
export async function launch() {
  const browser = await launchChromium();
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    await watchContext(context);
    return context;
  };
  // A page of its own context: watched before its first navigation.
  browser.newPage = async (options) => {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    page.on("close", () => context.close().catch(() => {}));
    return page;
  };
  return browser;
}

async function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** Call the API: `{status, body}` (body parsed when JSON). */
export async function call(method, path, { body, token, headers } = {}) {
  const h = { Accept: "application/json", ...(headers ?? {}) };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(BASE + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A token for `username`. */
export async function login(username, password) {
  const r = await call("POST", "/api/v1/auth/login", { body: { username, password } });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.access_token;
}

/** Save a full-page screenshot as OUT/name.png. */
export async function shot(page, name) {
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`e2e: screenshot ${path}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Poll `f` until it returns a truthy value or `ms` pass. */
export async function eventually(f, message, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out: ${message} (last: ${JSON.stringify(last)})`);
}

const AXE_SOURCE = readFileSync(fileURLToPath(new URL("../node_modules/axe-core/axe.min.js", import.meta.url)), "utf8");

/** Run axe-core on `page` as it is now and fail on any `critical` or `serious` violation,
 * naming each rule and the elements it found. axe is evaluated through the DevTools
 * protocol, not as a <script>, so the page's Content Security Policy stays as served. */
export async function accessible(page, view) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = violations.filter((v) => v.impact === "critical" || v.impact === "serious");
  const summary = (vs) => vs.map((v) => `${v.impact} ${v.id} (${v.targets.length}): ${v.targets.slice(0, 20).join(", ")}`).join("\n  ");
  if (violations.length > bad.length) console.log(`e2e: axe ${view}: minor/moderate:\n  ${summary(violations.filter((v) => !bad.includes(v)))}`);
  check(bad.length === 0, `axe-core on ${view}: ${bad.length} critical/serious rule(s):\n  ${summary(bad)}`);
  console.log(`e2e: axe ${view}: no critical or serious violation`);
}
