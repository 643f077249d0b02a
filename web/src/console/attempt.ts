// How a console form runs one API call: busy while it runs; an expired session handed to
// the page (to sign in again); any other failure said in the form's notice, in plain words.
import type { Ref } from "vue";
import { ApiError } from "../api/client";
import { describeProblem } from "../student/problems";

/** Where a form reports: the page's sign-in, its notice, and its busy flag (if it has one). */
export interface AttemptReport {
  expired: () => void;
  failed: (text: string) => void;
  busy?: Ref<boolean>;
}

/** `attempt(what, run)`: what `run` answers, or `undefined` once its failure is reported. */
export function attempter(report: AttemptReport) {
  return async function attempt<T>(what: string, run: () => Promise<T>): Promise<T | undefined> {
    if (report.busy) report.busy.value = true;
    try {
      return await run();
    } catch (e) {
      if (e instanceof ApiError && e.code === "unauthenticated") report.expired();
      else report.failed(`${what}: ${e instanceof ApiError ? describeProblem(e.problem) : String(e)}`);
      return undefined;
    } finally {
      if (report.busy) report.busy.value = false;
    }
  };
}
