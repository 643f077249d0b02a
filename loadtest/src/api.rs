//! registrar's REST calls as goose requests, and the one place that decides what an answer
//! means for the load test:
//!
//! - 2xx: accepted;
//! - a documented refusal (`section_full`, `time_conflict`, ..., and 429 `rate_limited`):
//!   a correct answer, marked success in goose (`set_success`);
//! - 5xx (`overloaded`, `unavailable`, `decision_pending`), a timeout, a broken connection,
//!   or any other status/code: a failure.
//!
//! The careful client ([`Client::Careful`], used by `reshard`) sends each registration
//! decision with an `Idempotency-Key` of its own and sends it again, same key, after a 503
//! that says nothing is decided yet; only the answer left after its retries is judged.
//!
//! Accepted decisions are written to the acknowledgement log ([`crate::acks`]); a
//! state-changing request without a final answer is logged as `unknown`.
//!
//! With `--follow-home`, a user moves to the node the server names as the student's home
//! (`X-Registrar-Home`, on a sign-in and on every registration answer) when that node is
//! one of `--hosts`: the home-aware client, whose requests are not forwarded ([`go_home`]).
//!
//! One function per route the scenarios use, all through the one `call` that judges the
//! answer. This module sits above the recorders ([`crate::acks`], [`crate::stats`]) and
//! the sign-in phase ([`crate::prelogin`]): it calls them, none of them imports it; the
//! types they share with it live in [`crate::wire`].

use crate::acks::{self, AckOp, AckResult};
use crate::cart::CartPlan;
use crate::prelogin;
use crate::stats::{self, Op};
use crate::wire::{Answer, HOME_HEADER, Student, Verdict, demo_password, token_subject};
use goose::prelude::*;
use rand::Rng;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The nodes a user may move to when the server names one as the student's home
/// (`--follow-home`); unset: users stay where they are.
static HOMES: OnceLock<Vec<String>> = OnceLock::new();

/// Follow the server's home hints to these nodes (`--hosts`); call before the attack.
pub fn follow_home(hosts: &[String]) {
    let hosts = hosts
        .iter()
        .map(|h| h.trim_end_matches('/').to_string())
        .collect();
    let _ = HOMES.set(hosts);
}

/// Point the user at `home` when following home hints and `home` is one of the hosts.
fn go_home(user: &mut GooseUser, home: Option<&str>) -> Result<(), Box<TransactionError>> {
    let (Some(hosts), Some(home)) = (HOMES.get(), home) else {
        return Ok(());
    };
    let home = home.trim_end_matches('/');
    if user.base_url.as_str().trim_end_matches('/') != home && hosts.iter().any(|h| h == home) {
        user.set_base_url(home)?;
    }
    Ok(())
}

/// Refusal codes that are correct answers under load (see `docs/api.md`).
pub const EXPECTED_REFUSALS: &[&str] = &[
    "section_full",
    "already_enrolled",
    "already_waitlisted",
    "time_conflict",
    "duplicate_course",
    "prerequisites_not_met",
    "credit_limit_exceeded",
    "registration_window_closed",
    "student_on_hold",
    "not_enrolled",
    "cart_full",
    "already_held",
    "corequisite_required",
    "rate_limited",
    // Registration policy: seats held back for others, sections closed to the student,
    // an appointment not open yet, deadlines, a seat offered to the student.
    "seats_reserved",
    "restricted_section",
    "registration_not_open_yet",
    "add_deadline_passed",
    "drop_deadline_passed",
    "already_offered",
    "no_offer",
];

/// 503 codes after which the careful client sends the same request again with the same
/// key: the server decided nothing yet (`overloaded`, `unavailable`: not recorded;
/// `decision_pending`: the retry gets the decision once it is made).
pub const RETRIED_CODES: &[&str] = &["overloaded", "decision_pending", "unavailable"];

/// Retries of one logical request by the careful client, at most.
pub const MAX_RETRIES: u32 = 6;

/// How a request is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// One attempt, no key: the first answer is the answer (`flash`, `churn`, `hot`, ...).
    Plain,
    /// A registration decision (enroll, drop, swap) carries an `Idempotency-Key` of its
    /// own; any request answered 503 with one of [`RETRIED_CODES`] is sent again (same
    /// key) after [`backoff`], at most [`MAX_RETRIES`] times. The answer after the retries
    /// is the one judged; the latency runs from the first attempt to it.
    Careful,
}

/// The pause before retry `n` (from 0): 25 ms doubling up to 400 ms (about 1.2 s over
/// all retries), enough to ride over a shard move. `Retry-After` (whole seconds) is not
/// waited for: a registration peak's client retries sooner. Jitter is added by the caller.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(25u64 << n.min(4))
}

/// Hands out demo students so that no two users share one: `first..first+count`, wrapping
/// around once all were used (a second pass gets mostly refusals, which are correct answers).
pub struct StudentPool {
    next: AtomicU32,
    first: u32,
    count: u32,
}

impl StudentPool {
    /// Students `first..first+count`.
    pub const fn new(first: u32, count: u32) -> Self {
        Self {
            next: AtomicU32::new(0),
            first,
            count,
        }
    }

    /// The next student number.
    pub fn take(&self) -> u32 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.first + n % self.count.max(1)
    }

    /// The next student number, or `None` once every student had a turn (no wrap).
    pub fn take_once(&self) -> Option<u32> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.count).then(|| self.first + n)
    }

    /// How many were handed out so far.
    pub fn taken(&self) -> u32 {
        self.next.load(Ordering::Relaxed)
    }
}

/// Send one request (the careful client: until an answer that is not a retried 503) and
/// classify the answer. `name` groups it in goose's report; a retry is named `"{name}
/// retry"`, so goose's request log shows which lines continue the one before them.
#[allow(clippy::too_many_arguments)]
async fn call(
    user: &mut GooseUser,
    client: Client,
    op: Op,
    method: GooseMethod,
    path: &str,
    name: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Answer, Box<TransactionError>> {
    let key = (client == Client::Careful && op.is_decision()).then(|| Uuid::new_v4().to_string());
    let started = Instant::now();
    let retry_name = format!("{name} retry");
    let mut retries = 0;
    loop {
        let mut builder = user.get_request_builder(&method, path)?;
        if let Some(t) = token {
            builder = builder.bearer_auth(t);
        }
        if let Some(k) = &key {
            builder = builder.header("idempotency-key", k.as_str());
        }
        if let Some(b) = &body {
            builder = builder.json(b);
        }
        let request = GooseRequest::builder()
            .path(path)
            .method(method)
            .name(if retries == 0 { name } else { &retry_name })
            .set_request_builder(builder)
            .build();
        let mut goose = user.request(request).await?;
        let response = match goose.response {
            Ok(r) => r,
            Err(e) => {
                // Goose already counted the transport error (timeout, reset) as a failure.
                stats::record(
                    op,
                    started,
                    Verdict::Failed,
                    &format!("error {}", error_kind(&e)),
                );
                return Ok(Answer {
                    verdict: Verdict::Failed,
                    status: 0,
                    code: None,
                    body: Value::Null,
                    key,
                    home: None,
                });
            }
        };
        let status = response.status().as_u16();
        let home = response
            .headers()
            .get(HOME_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body.get("code").and_then(Value::as_str).map(str::to_string);
        let label = match &code {
            Some(c) => format!("{status} {c}"),
            None => status.to_string(),
        };
        let retry = client == Client::Careful
            && status == 503
            && code.as_deref().is_some_and(|c| RETRIED_CODES.contains(&c))
            && retries < MAX_RETRIES;
        if retry {
            stats::retried(op, &label);
            // Not this request's outcome: the careful client absorbs it and asks again.
            user.set_success(&mut goose.request)?;
            let jitter = rand::rng().random_range(0.5..=1.0);
            tokio::time::sleep(backoff(retries).mul_f64(jitter)).await;
            retries += 1;
            continue;
        }
        let verdict = match status {
            200..=299 => Verdict::Accepted,
            400..=499
                if code
                    .as_deref()
                    .is_some_and(|c| EXPECTED_REFUSALS.contains(&c)) =>
            {
                Verdict::Refused
            }
            _ => Verdict::Failed,
        };
        stats::record(op, started, verdict, &label);
        match verdict {
            Verdict::Accepted => {}
            Verdict::Refused => user.set_success(&mut goose.request)?,
            Verdict::Failed => {
                // `set_failure` returns the error that would end the transaction; we keep
                // going (the rest of a burst is still worth sending) and only tally it.
                let _ = user.set_failure(&label, &mut goose.request, None, Some(&text));
            }
        }
        go_home(user, home.as_deref())?;
        return Ok(Answer {
            verdict,
            status,
            code,
            body,
            key,
            home,
        });
    }
}

fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// Demo student `number`, signed in: the token from the sign-in phase (`--pre-login`)
/// when there is one, else a login now.
pub async fn student(
    user: &mut GooseUser,
    client: Client,
    number: u32,
) -> Result<Option<Student>, Box<TransactionError>> {
    match prelogin::token(number) {
        Some(s) => {
            go_home(user, s.home.as_deref())?;
            Ok(Some(s))
        }
        None => login(user, client, number).await,
    }
}

/// Log in as demo student `number`.
pub async fn login(
    user: &mut GooseUser,
    client: Client,
    number: u32,
) -> Result<Option<Student>, Box<TransactionError>> {
    let body = json!({"username": format!("s{number:06}"), "password": demo_password()});
    let answer = call(
        user,
        client,
        Op::Login,
        GooseMethod::Post,
        "/api/v1/auth/login",
        "login",
        None,
        Some(body),
    )
    .await?;
    if answer.verdict != Verdict::Accepted {
        return Ok(None);
    }
    let token = answer
        .body
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(token.and_then(|token| {
        token_subject(&token).map(|id| Student {
            id,
            token,
            home: answer.home,
        })
    }))
}

/// Enroll in `section`; logs the acknowledgement.
pub async fn enroll(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    section: Uuid,
) -> Result<Answer, Box<TransactionError>> {
    let path = format!("/api/v1/sections/{section}/enrollments");
    let answer = call(
        user,
        client,
        Op::Enroll,
        GooseMethod::Post,
        &path,
        "enroll",
        Some(&student.token),
        None,
    )
    .await?;
    let result = match (answer.verdict, answer.status) {
        (Verdict::Accepted, 201) => Some(AckResult::Enrolled),
        (Verdict::Accepted, 202) => Some(AckResult::Waitlisted),
        (Verdict::Failed, _) => Some(AckResult::Unknown),
        _ => None,
    };
    if let Some(r) = result {
        acks::record(student.id, section, AckOp::Enroll, r, &answer);
    }
    Ok(answer)
}

/// Drop `section`; logs the acknowledgement.
pub async fn drop_section(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    section: Uuid,
) -> Result<Answer, Box<TransactionError>> {
    let path = format!("/api/v1/sections/{section}/enrollments/me");
    let answer = call(
        user,
        client,
        Op::Drop,
        GooseMethod::Delete,
        &path,
        "drop",
        Some(&student.token),
        None,
    )
    .await?;
    let result = match answer.verdict {
        Verdict::Accepted => Some(AckResult::Dropped),
        Verdict::Failed => Some(AckResult::Unknown),
        Verdict::Refused => None,
    };
    if let Some(r) = result {
        acks::record(student.id, section, AckOp::Drop, r, &answer);
    }
    Ok(answer)
}

/// Swap `drop` for a seat in `add`; logs both halves.
pub async fn swap(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    drop: Uuid,
    add: Uuid,
) -> Result<Answer, Box<TransactionError>> {
    let answer = call(
        user,
        client,
        Op::Swap,
        GooseMethod::Post,
        "/api/v1/enrollments/swap",
        "swap",
        Some(&student.token),
        Some(json!({"drop": drop, "add": add})),
    )
    .await?;
    let (add_result, drop_result) = match answer.verdict {
        Verdict::Accepted => (AckResult::Enrolled, AckResult::Dropped),
        Verdict::Failed => (AckResult::Unknown, AckResult::Unknown),
        Verdict::Refused => return Ok(answer),
    };
    acks::record(student.id, add, AckOp::SwapAdd, add_result, &answer);
    acks::record(student.id, drop, AckOp::SwapDrop, drop_result, &answer);
    Ok(answer)
}

/// Take every section of `sections` in one decision (a linked set); logs one
/// acknowledgement per section: all enrolled, or, without a final answer, all unknown.
pub async fn enroll_set(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    sections: &[Uuid],
) -> Result<Answer, Box<TransactionError>> {
    let answer = call(
        user,
        client,
        Op::EnrollSet,
        GooseMethod::Post,
        "/api/v1/enrollments/sets",
        "enroll set",
        Some(&student.token),
        Some(json!({ "sections": sections })),
    )
    .await?;
    let result = match (answer.verdict, answer.status) {
        (Verdict::Accepted, 201) => AckResult::Enrolled,
        (Verdict::Failed, _) => AckResult::Unknown,
        _ => return Ok(answer),
    };
    for section in sections {
        acks::record(student.id, *section, AckOp::Enroll, result, &answer);
    }
    Ok(answer)
}

/// Drop `section` of a linked set, which drops the whole set (`set`, the sections the
/// student holds of it); logs one acknowledgement per section the answer says it left.
pub async fn drop_set(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    section: Uuid,
    set: &[Uuid],
) -> Result<Answer, Box<TransactionError>> {
    let path = format!("/api/v1/sections/{section}/enrollments/me");
    let answer = call(
        user,
        client,
        Op::Drop,
        GooseMethod::Delete,
        &path,
        "drop set",
        Some(&student.token),
        None,
    )
    .await?;
    match answer.verdict {
        Verdict::Accepted => {
            let left: Vec<Uuid> = answer
                .body
                .get("dropped")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|v| v.as_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            for s in left {
                acks::record(student.id, s, AckOp::Drop, AckResult::Dropped, &answer);
            }
        }
        Verdict::Failed => {
            for s in set {
                acks::record(student.id, *s, AckOp::Drop, AckResult::Unknown, &answer);
            }
        }
        Verdict::Refused => {}
    }
    Ok(answer)
}

/// Put `section` in the student's cart (a staging step: no decision, no acknowledgement).
pub async fn cart_put(
    user: &mut GooseUser,
    client: Client,
    student: &Student,
    section: Uuid,
) -> Result<Answer, Box<TransactionError>> {
    let path = format!("/api/v1/students/me/cart/{section}");
    call(
        user,
        client,
        Op::CartPut,
        GooseMethod::Put,
        &path,
        "cart put",
        Some(&student.token),
        None,
    )
    .await
}

/// Submit the student's cart, always through the careful client (one `Idempotency-Key`,
/// sent again after a 503 that decided nothing). Tallies what each item and each linked
/// set of `plan` got ([`stats::cart_decided`]), and logs one acknowledgement per item
/// seated or waitlisted (`enroll`, as a single enroll would be); without a final answer,
/// every section of `plan` is logged `unknown`.
pub async fn cart_submit(
    user: &mut GooseUser,
    student: &Student,
    plan: &CartPlan,
) -> Result<Answer, Box<TransactionError>> {
    let answer = call(
        user,
        Client::Careful,
        Op::CartSubmit,
        GooseMethod::Post,
        "/api/v1/students/me/cart/submit",
        "cart submit",
        Some(&student.token),
        None,
    )
    .await?;
    match answer.verdict {
        Verdict::Accepted => {
            let items = cart_items(&answer.body);
            for (section, status, _) in &items {
                let result = match status.as_str() {
                    "enrolled" => AckResult::Enrolled,
                    "waitlisted" => AckResult::Waitlisted,
                    _ => continue,
                };
                acks::record(student.id, *section, AckOp::Enroll, result, &answer);
            }
            let sets = plan
                .sets
                .iter()
                .map(|set| set_outcome(&set.sections, &items))
                .collect();
            stats::cart_decided(items.into_iter().map(|(_, _, label)| label).collect(), sets);
        }
        Verdict::Failed => {
            for section in plan.sections() {
                acks::record(
                    student.id,
                    section,
                    AckOp::Enroll,
                    AckResult::Unknown,
                    &answer,
                );
            }
        }
        Verdict::Refused => {}
    }
    Ok(answer)
}

/// The items of a submit's answer: (section, status, outcome label: `enrolled`,
/// `waitlisted` or `refused <code>`).
fn cart_items(body: &Value) -> Vec<(Uuid, String, String)> {
    let Some(items) = body.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let section: Uuid = item.get("section_id")?.as_str()?.parse().ok()?;
            let status = item.get("status")?.as_str()?.to_string();
            let label = match status.as_str() {
                "enrolled" | "waitlisted" => status.clone(),
                other => {
                    let code = item.get("code").and_then(Value::as_str).unwrap_or("?");
                    format!("{other} {code}")
                }
            };
            Some((section, status, label))
        })
        .collect()
}

/// How a linked set fared: its items' common label (the primary's code for a refusal),
/// `split` if they differ (all-or-none broken), `missing` if an item is not in the answer.
fn set_outcome(set: &[Uuid], items: &[(Uuid, String, String)]) -> String {
    let labels: Vec<Option<&(Uuid, String, String)>> = set
        .iter()
        .map(|id| items.iter().find(|(s, _, _)| s == id))
        .collect();
    if labels.iter().any(Option::is_none) {
        return "missing".to_string();
    }
    let statuses: Vec<&str> = labels.iter().flatten().map(|i| i.1.as_str()).collect();
    if statuses.windows(2).any(|w| w[0] != w[1]) {
        return "split".to_string();
    }
    labels[0].map(|i| i.2.clone()).unwrap_or_default()
}

/// The student's schedule: (enrolled section ids, waitlisted section ids).
pub async fn schedule(
    user: &mut GooseUser,
    student: &Student,
) -> Result<Option<(Vec<Uuid>, Vec<Uuid>)>, Box<TransactionError>> {
    let answer = call(
        user,
        Client::Plain,
        Op::Schedule,
        GooseMethod::Get,
        "/api/v1/students/me/schedule",
        "schedule",
        Some(&student.token),
        None,
    )
    .await?;
    if answer.verdict != Verdict::Accepted {
        return Ok(None);
    }
    let ids = |key: &str| -> Vec<Uuid> {
        answer
            .body
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e.get("section_id")?.as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Some((ids("enrolled"), ids("waitlisted"))))
}

/// A public GET (catalog reads, health), named for goose's report.
pub async fn get_public(
    user: &mut GooseUser,
    op: Op,
    path: &str,
    name: &str,
) -> Result<Answer, Box<TransactionError>> {
    call(
        user,
        Client::Plain,
        op,
        GooseMethod::Get,
        path,
        name,
        None,
        None,
    )
    .await
}

/// Open a section's seat stream, read until its first `seats` event (at most `wait`),
/// then hang up, as a browser tab that is closed soon after opening does.
pub async fn peek_seat_stream(
    user: &mut GooseUser,
    section: Uuid,
    wait: Duration,
) -> Result<(), Box<TransactionError>> {
    let path = format!("/api/v1/sections/{section}/seats/stream");
    let builder = user
        .get_request_builder(&GooseMethod::Get, &path)?
        .timeout(wait + Duration::from_secs(5));
    let request = GooseRequest::builder()
        .path(path.as_str())
        .name("seat stream")
        .set_request_builder(builder)
        .build();
    let started = Instant::now();
    let mut goose = user.request(request).await?;
    let mut response = match goose.response {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let label = r.status().as_u16().to_string();
            stats::record(Op::SeatStream, started, Verdict::Failed, &label);
            let _ = user.set_failure(&label, &mut goose.request, None, None);
            return Ok(());
        }
        Err(e) => {
            stats::record(Op::SeatStream, started, Verdict::Failed, error_kind(&e));
            return Ok(());
        }
    };
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    let got_event = loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("event: seats") || seen.contains("event:seats") {
                    break true;
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break false,
        }
    };
    let (verdict, label) = if got_event {
        (Verdict::Accepted, "200 seats event")
    } else {
        (Verdict::Failed, "200 no seats event")
    };
    stats::record(Op::SeatStream, started, verdict, label);
    if !got_event {
        let _ = user.set_failure(label, &mut goose.request, None, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_answer_is_read_per_item_and_per_set() {
        let (lec, lab, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let body = json!({"items": [
            {"section_id": lec, "group": "BIOL1406", "status": "refused", "code": "section_full", "detail": "", "decision_id": null},
            {"section_id": lab, "group": "BIOL1406", "status": "refused", "code": "section_full", "detail": "", "decision_id": null},
            {"section_id": other, "group": null, "status": "waitlisted", "code": null, "detail": null, "decision_id": "x"},
        ]});
        let items = cart_items(&body);
        let labels: Vec<&str> = items.iter().map(|i| i.2.as_str()).collect();
        assert_eq!(
            labels,
            ["refused section_full", "refused section_full", "waitlisted"]
        );
        assert_eq!(set_outcome(&[lec, lab], &items), "refused section_full");
        assert_eq!(set_outcome(&[lec, other], &items), "split");
        assert_eq!(set_outcome(&[lec, Uuid::new_v4()], &items), "missing");
        assert!(cart_items(&json!({"code": "x"})).is_empty());
    }

    #[test]
    fn a_once_only_pool_hands_out_each_student_once_then_none() {
        let pool = StudentPool::new(5, 3);
        let got: Vec<Option<u32>> = (0..5).map(|_| pool.take_once()).collect();
        assert_eq!(got, [Some(5), Some(6), Some(7), None, None]);
    }

    #[test]
    fn the_careful_backoff_is_short_and_bounded() {
        let pauses: Vec<u64> = (0..MAX_RETRIES)
            .map(|n| backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, vec![25, 50, 100, 200, 400, 400]);
        assert_eq!(backoff(60), Duration::from_millis(400), "no overflow");
        let total: u64 = pauses.iter().sum();
        assert!(total < 1_500, "all retries of one request within ~1.2 s");
    }

    #[test]
    fn students_are_unique_until_the_range_wraps() {
        let pool = StudentPool::new(10, 3);
        let got: Vec<u32> = (0..4).map(|_| pool.take()).collect();
        assert_eq!(got, vec![10, 11, 12, 10]);
        assert_eq!(pool.taken(), 4);
    }
}
