// Runs the end-to-end specs (e2e/*.spec.mjs, or those named on the command line) in one
// Chromium against a running server (E2E_BASE_URL); exits non-zero when one fails.
// Each spec exports `async function run(browser)`. deploy/local/e2e.sh starts the server.
// A spec during which any page reported a Content Security Policy violation fails.
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, takeViolations } from "./lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const specs = readdirSync(here)
  .filter((f) => f.endsWith(".spec.mjs"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
const browser = await launch();
let failed = 0;
for (const spec of specs) {
  const started = Date.now();
  try {
    const mod = await import(`./${spec}`);
    await mod.run(browser);
    // The pages must work under the server's Content Security Policy, not around it.
    const violations = takeViolations();
    if (violations.length > 0) throw new Error(`Content Security Policy violations:\n${violations.join("\n")}`);
    console.log(`e2e: ${spec} passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    takeViolations();
    failed += 1;
    console.error(`e2e: ${spec} FAILED: ${e.stack ?? e}`);
  }
}
await browser.close();
if (specs.length === 0) {
  console.error("e2e: no spec found");
  process.exit(1);
}
process.exit(failed === 0 ? 0 : 1);
