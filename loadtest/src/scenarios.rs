//! The goose scenarios. Each user keeps its state (its student, its random generator) in
//! goose session data; students come from one shared [`StudentPool`] so that no two users
//! act as the same student at the same time (the server serializes each student's
//! requests, so sharing one would measure that lock, not the system).
//!
//! - `flash`: the window opens. Each iteration a new student logs in and adds 4-6
//!   Zipf-chosen sections back to back (a few sections get most of the traffic).
//! - `open`: the window's first seconds, all cold: each of the `--students` students
//!   enrolls exactly once, in one Zipf-chosen section, and then the users idle. Run it
//!   against a freshly started server (no section active, no student's rule inputs read)
//!   with `--pre-login`, as flash-bench.sh does.
//! - `cart`: the window opens on carts filled beforehand: each of the `--students`
//!   students submits its cart of 4-6 sections (one or two linked sets among them, see
//!   [`crate::cart`]) exactly once, through the careful client, and then the users idle.
//!   With `--pre-login` the carts are filled before the load; without, each user fills
//!   its student's cart right after the login.
//! - `browse`: anonymous catalog reads: terms, section pages, single sections, and a seat
//!   stream opened until its first event.
//! - `churn`: a student enrolls in a few sections, then loops: read the schedule, and drop
//!   and re-add, or swap, or add, or drop. Drops from full sections promote waitlists.
//! - `mixed`: browse 6 : flash 3 : churn 1, browse and churn with think time.
//! - `hot`: every user is its own student and loops enroll → drop on ONE section
//!   (`--hot-section`); both are decisions of that section's actor.
//! - `reshard`: a registration peak that keeps going while an operator moves shards: 4
//!   users in 5 are their own student looping enroll → drop on a small hot set (the
//!   `--hot-section` list, else the catalog's 6 hottest; Zipf-weighted, so one shard is
//!   clearly the hottest), the others are flash bursts over the catalog. Every request
//!   goes through the careful client ([`api::Client::Careful`]): an `Idempotency-Key` per
//!   decision, retried on a 503 that decided nothing, so a failure is a real one.
//! - `chaos`: what `chaos-bench.sh` runs while faults are injected: flash bursts 1 : churn
//!   3, the churn swap-heavy (6 steps in 10 are swaps), both with 50-200 ms think time, every
//!   request through the careful client, so an `Idempotency-Key` is retried across a
//!   failover and the acknowledgement log records each key and its final status.
//! - `healthz`: `GET /healthz` only, the HTTP ceiling of the machine.
//!
//! With `--hosts` (several nodes of one cluster), every scenario gets a first on-start
//! transaction that points the user at its node: user i (goose's launch order) at host
//! i mod n, so the users are spread round-robin and each keeps its node for the whole run
//! (with `--follow-home`, a user moves on to its student's home node: see `api`).

use crate::api::{self, Client, StudentPool};
use crate::cart;
use crate::catalog;
use crate::cli::ScenarioName;
use crate::clock::now_ms;
use crate::stats::Op;
use crate::wire::{Answer, Student, Verdict};
use crate::zipf::Zipf;
use goose::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

static STUDENTS: OnceLock<StudentPool> = OnceLock::new();
static HOT_SECTIONS: OnceLock<Vec<Uuid>> = OnceLock::new();
static HOT_SET: OnceLock<(Vec<Uuid>, Zipf)> = OnceLock::new();
static HOSTS: OnceLock<Vec<String>> = OnceLock::new();
static GOOSE_STARTED_MS: OnceLock<i64> = OnceLock::new();

/// How many of the catalog's hottest sections `reshard` loops on without `--hot-section`.
pub const RESHARD_HOT_SET: usize = 6;

/// Skew inside `reshard`'s hot set: with 6 sections the first takes ~41% of the loops,
/// twice the second, so its shard is the one an operator would move.
const HOT_SET_EXPONENT: f64 = 1.0;

/// Set the run's student range, hot sections (`hot`: one; `reshard`: its hot set, hottest
/// first) and the hosts to spread users over (empty: every user on goose's `--host`); call
/// before [`build`].
pub fn configure(first_student: u32, students: u32, hot_sections: Vec<Uuid>, hosts: Vec<String>) {
    let _ = STUDENTS.set(StudentPool::new(first_student, students));
    if !hot_sections.is_empty() {
        let _ = HOT_SECTIONS.set(hot_sections);
    }
    let _ = HOSTS.set(hosts);
}

/// `reshard`'s hot set, hottest first: `--hot-section`, else the catalog's
/// [`RESHARD_HOT_SET`] hottest (the catalog is loaded before the attack).
pub fn hot_set() -> &'static [Uuid] {
    &HOT_SET
        .get_or_init(|| {
            let sections = HOT_SECTIONS.get().cloned().unwrap_or_else(|| {
                catalog::get()
                    .sections
                    .iter()
                    .take(RESHARD_HOT_SET)
                    .map(|s| s.id)
                    .collect()
            });
            let zipf = Zipf::new(sections.len(), HOT_SET_EXPONENT);
            (sections, zipf)
        })
        .0
}

/// Unix milliseconds of goose's start (`GooseUser::started`, from which the request log's
/// `elapsed` counts), once any user ran a transaction.
pub fn goose_started_unix_ms() -> Option<i64> {
    GOOSE_STARTED_MS.get().copied()
}

/// The host of the user launched `index`-th (from 0): round-robin over `hosts`.
pub fn host_for(index: usize, hosts: &[String]) -> &str {
    &hosts[index % hosts.len()]
}

/// On start, before any other transaction: this user's node of `--hosts`.
async fn pin_host(user: &mut GooseUser) -> TransactionResult {
    let hosts = HOSTS.get().expect("configure() runs before the attack");
    let host = host_for(user.weighted_users_index, hosts).to_string();
    user.set_base_url(&host)?;
    Ok(())
}

/// How many students the run handed out.
pub fn students_taken() -> u32 {
    STUDENTS.get().map(StudentPool::taken).unwrap_or(0)
}

fn next_student() -> u32 {
    STUDENTS
        .get()
        .expect("configure() runs before the attack")
        .take()
}

/// One user's state between transactions.
#[derive(Clone)]
struct Session {
    rng: StdRng,
    student: Option<Student>,
}

/// Goose session data must be `Clone`; the slot lets a transaction take the session out,
/// use it across requests (which need `&mut GooseUser`) and put it back.
#[derive(Clone)]
struct Slot(Option<Session>);

fn take_session(user: &mut GooseUser) -> Session {
    // Every user shares goose's start; the first transaction through here notes it.
    GOOSE_STARTED_MS.get_or_init(|| now_ms() - user.started.elapsed().as_millis() as i64);
    user.get_session_data_mut::<Slot>()
        .and_then(|slot| slot.0.take())
        .unwrap_or_else(|| Session {
            rng: StdRng::from_rng(&mut rand::rng()),
            student: None,
        })
}

fn put_session(user: &mut GooseUser, session: Session) {
    user.set_session_data(Slot(Some(session)));
}

/// Run the body with the user's session taken out, and put it back whatever it returned.
macro_rules! with_session {
    ($user:ident, $session:ident, $body:expr) => {{
        let mut $session = take_session($user);
        let result: TransactionResult = async { $body }.await;
        put_session($user, $session);
        result
    }};
}

/// The scenarios of `name`, ready to register.
pub fn build(name: ScenarioName) -> Result<Vec<Scenario>, GooseError> {
    let scenarios = scenarios_of(name)?;
    if HOSTS.get().is_none_or(|hosts| hosts.len() < 2) {
        return Ok(scenarios);
    }
    // Sequenced on-start transactions run before the unsequenced ones (`login_once`,
    // `churn_start`), so no request leaves before the user has its host.
    Ok(scenarios
        .into_iter()
        .map(|s| {
            s.register_transaction(
                transaction!(pin_host)
                    .set_name("pick host")
                    .set_on_start()
                    .set_sequence(1),
            )
        })
        .collect())
}

fn scenarios_of(name: ScenarioName) -> Result<Vec<Scenario>, GooseError> {
    Ok(match name {
        ScenarioName::Flash => vec![flash()],
        ScenarioName::Open => vec![open()],
        ScenarioName::Cart => {
            vec![scenario!("cart").register_transaction(transaction!(cart_once).set_name("cart"))]
        }
        ScenarioName::Browse => vec![browse()?],
        ScenarioName::Churn => vec![churn()],
        ScenarioName::Mixed => {
            let think = (Duration::from_millis(100), Duration::from_millis(500));
            vec![
                browse()?.set_weight(6)?.set_wait_time(think.0, think.1)?,
                flash().set_weight(3)?,
                churn().set_weight(1)?.set_wait_time(think.0, think.1)?,
            ]
        }
        ScenarioName::Hot => vec![
            scenario!("hot")
                .register_transaction(transaction!(login_once).set_on_start())
                .register_transaction(transaction!(hot_cycle).set_name("enroll+drop hot")),
        ],
        ScenarioName::Reshard => {
            hot_set();
            vec![
                scenario!("reshard hot")
                    .set_weight(4)?
                    .register_transaction(transaction!(careful_login_once).set_on_start())
                    .register_transaction(
                        transaction!(reshard_cycle).set_name("enroll+drop hot set"),
                    ),
                scenario!("reshard flash")
                    .set_weight(1)?
                    .register_transaction(
                        transaction!(careful_flash_burst).set_name("login+burst"),
                    ),
            ]
        }
        ScenarioName::Chaos => {
            let think = (Duration::from_millis(50), Duration::from_millis(200));
            vec![
                // Think time here too: a user pinned to a killed node would otherwise
                // spin on refused connections.
                scenario!("chaos flash")
                    .set_weight(1)?
                    .set_wait_time(think.0, think.1)?
                    .register_transaction(
                        transaction!(careful_flash_burst).set_name("login+burst"),
                    ),
                scenario!("chaos churn")
                    .set_weight(3)?
                    .set_wait_time(think.0, think.1)?
                    .register_transaction(
                        transaction!(chaos_churn_start)
                            .set_on_start()
                            .set_name("login+3 enrolls"),
                    )
                    .register_transaction(
                        transaction!(chaos_churn_step).set_name("schedule+change"),
                    ),
                scenario!("chaos sets")
                    .set_weight(1)?
                    .set_wait_time(think.0, think.1)?
                    .register_transaction(
                        transaction!(chaos_sets_step).set_name("schedule+set change"),
                    ),
            ]
        }
        ScenarioName::Healthz => {
            vec![scenario!("healthz").register_transaction(transaction!(healthz))]
        }
    })
}

/// The window opens: every student enrolls once, in one Zipf-chosen section, all cold.
fn open() -> Scenario {
    scenario!("open").register_transaction(transaction!(open_once).set_name("enroll once"))
}

/// The next student (never one seen before) enrolls once; when every student has had
/// their turn the user idles until the run ends.
async fn open_once(user: &mut GooseUser) -> TransactionResult {
    let pool = STUDENTS.get().expect("configure() runs before the attack");
    let Some(number) = pool.take_once() else {
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    };
    with_session!(user, session, {
        let Some(student) = api::student(user, Client::Plain, number).await? else {
            return Ok(());
        };
        let section = catalog::get().pick(&mut session.rng).id;
        api::enroll(user, Client::Plain, &student, section).await?;
        Ok(())
    })
}

/// The next student (never one seen before) submits its cart once, filling it first if
/// the staging phase did not; when every student has had their turn the user idles.
async fn cart_once(user: &mut GooseUser) -> TransactionResult {
    let pool = STUDENTS.get().expect("configure() runs before the attack");
    let Some(number) = pool.take_once() else {
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    };
    let Some(student) = api::student(user, Client::Plain, number).await? else {
        return Ok(());
    };
    let plan = match cart::staged(number) {
        Some(plan) => plan,
        None => {
            let plan = cart::compose(catalog::get(), &mut cart::rng_for(number));
            for section in plan.sections() {
                api::cart_put(user, Client::Careful, &student, section).await?;
            }
            plan
        }
    };
    api::cart_submit(user, &student, &plan).await?;
    Ok(())
}

fn flash() -> Scenario {
    scenario!("flash").register_transaction(transaction!(flash_burst).set_name("login+burst"))
}

fn browse() -> Result<Scenario, GooseError> {
    Ok(scenario!("browse")
        .register_transaction(transaction!(browse_terms).set_weight(1)?)
        .register_transaction(transaction!(browse_page).set_weight(2)?)
        .register_transaction(transaction!(browse_section).set_weight(6)?)
        .register_transaction(transaction!(browse_stream).set_weight(1)?))
}

fn churn() -> Scenario {
    scenario!("churn")
        .register_transaction(transaction!(churn_start).set_on_start())
        .register_transaction(transaction!(churn_step))
}

/// A new student logs in and adds 4-6 Zipf-chosen sections.
async fn flash_burst(user: &mut GooseUser) -> TransactionResult {
    burst(user, Client::Plain).await
}

/// [`flash_burst`] through the careful client.
async fn careful_flash_burst(user: &mut GooseUser) -> TransactionResult {
    burst(user, Client::Careful).await
}

async fn burst(user: &mut GooseUser, client: Client) -> TransactionResult {
    with_session!(user, session, {
        let Some(student) = api::student(user, client, next_student()).await? else {
            return Ok(());
        };
        let k = session.rng.random_range(4..=6);
        let picks = catalog::get().pick_distinct(&mut session.rng, k, &[]);
        for section in picks {
            api::enroll(user, client, &student, section).await?;
        }
        Ok(())
    })
}

async fn browse_terms(user: &mut GooseUser) -> TransactionResult {
    api::get_public(user, Op::Catalog, "/api/v1/terms", "terms").await?;
    Ok(())
}

async fn browse_page(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let c = catalog::get();
        let mut path = format!("/api/v1/terms/{}/sections?limit=50", c.term_id);
        if session.rng.random_bool(0.5) {
            path.push_str(&format!("&cursor={}", c.any(&mut session.rng).id));
        }
        api::get_public(user, Op::Catalog, &path, "section page").await?;
        Ok(())
    })
}

async fn browse_section(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let id = catalog::get().pick(&mut session.rng).id;
        let path = format!("/api/v1/sections/{id}");
        api::get_public(user, Op::Catalog, &path, "section").await?;
        Ok(())
    })
}

async fn browse_stream(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let id = catalog::get().pick(&mut session.rng).id;
        api::peek_seat_stream(user, id, Duration::from_secs(2)).await
    })
}

/// Log in as a new student and take 3 sections.
async fn churn_start(user: &mut GooseUser) -> TransactionResult {
    churn_start_with(user, Client::Plain).await
}

async fn churn_start_with(user: &mut GooseUser, client: Client) -> TransactionResult {
    with_session!(user, session, {
        let Some(student) = api::student(user, client, next_student()).await? else {
            return Ok(());
        };
        for section in catalog::get().pick_distinct(&mut session.rng, 3, &[]) {
            api::enroll(user, client, &student, section).await?;
        }
        session.student = Some(student);
        Ok(())
    })
}

/// Read the schedule, then drop/add, swap, add or drop.
async fn churn_step(user: &mut GooseUser) -> TransactionResult {
    churn_step_with(user, Client::Plain, ChurnMix::Churn).await
}

/// `chaos`: the churn student through the careful client.
async fn chaos_churn_start(user: &mut GooseUser) -> TransactionResult {
    churn_start_with(user, Client::Careful).await
}

/// `chaos`: a churn step through the careful client, swap-heavy.
async fn chaos_churn_step(user: &mut GooseUser) -> TransactionResult {
    churn_step_with(user, Client::Careful, ChurnMix::SwapHeavy).await
}

/// `chaos`: a student of linked sets through the careful client: takes a linked set
/// (lecture + lab [+ recitation], all or nothing) or, holding one, drops it whole (3 in 10).
async fn chaos_sets_step(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let student = match session.student.clone() {
            Some(s) => s,
            None => match api::login(user, Client::Careful, next_student()).await? {
                Some(s) => {
                    session.student = Some(s.clone());
                    s
                }
                None => return Ok(()),
            },
        };
        let Some((enrolled, _)) = api::schedule(user, &student).await? else {
            return Ok(());
        };
        let cat = catalog::get();
        let held: Vec<(Uuid, &str)> = enrolled
            .iter()
            .filter_map(|s| Some((*s, cat.linked_course_of(*s)?)))
            .collect();
        let rng = &mut session.rng;
        if let Some(&(member, course)) = held.first()
            && rng.random_range(0..10) < 3
        {
            let set: Vec<Uuid> = held
                .iter()
                .filter(|(_, c)| *c == course)
                .map(|(s, _)| *s)
                .collect();
            api::drop_set(user, Client::Careful, &student, member, &set).await?;
            return Ok(());
        }
        let taken: Vec<&str> = held.iter().map(|(_, c)| *c).collect();
        if let Some(set) = cat.pick_linked_set(rng, &taken) {
            api::enroll_set(user, Client::Careful, &student, &set.sections).await?;
        }
        Ok(())
    })
}

/// Which steps a churn user takes, out of 10 rolls.
#[derive(Clone, Copy)]
enum ChurnMix {
    /// add 2, drop+add 4, swap 3, drop 1.
    Churn,
    /// add 2, drop+add 1, swap 6, drop 1: swaps are what faults break most subtly.
    SwapHeavy,
}

async fn churn_step_with(user: &mut GooseUser, client: Client, mix: ChurnMix) -> TransactionResult {
    with_session!(user, session, {
        let student = match session.student.clone() {
            Some(s) => s,
            None => match api::login(user, client, next_student()).await? {
                Some(s) => {
                    session.student = Some(s.clone());
                    s
                }
                None => return Ok(()),
            },
        };
        let Some((enrolled, waitlisted)) = api::schedule(user, &student).await? else {
            return Ok(());
        };
        let active: Vec<Uuid> = enrolled.iter().chain(&waitlisted).copied().collect();
        let rng = &mut session.rng;
        let fresh = catalog::get()
            .pick_distinct(rng, 1, &active)
            .first()
            .copied();
        let roll = rng.random_range(0..10);
        let (drop_add, swap) = match mix {
            ChurnMix::Churn => (2..=5, 6..=8),
            ChurnMix::SwapHeavy => (2..=2, 3..=8),
        };
        match (roll, fresh) {
            (_, Some(add)) if active.is_empty() || roll < 2 => {
                api::enroll(user, client, &student, add).await?;
            }
            (r, Some(add)) if drop_add.contains(&r) => {
                let gone = active[rng.random_range(0..active.len())];
                api::drop_section(user, client, &student, gone).await?;
                api::enroll(user, client, &student, add).await?;
            }
            (r, Some(add)) if swap.contains(&r) && !enrolled.is_empty() => {
                let gone = enrolled[rng.random_range(0..enrolled.len())];
                api::swap(user, client, &student, gone, add).await?;
            }
            _ if !active.is_empty() => {
                let gone = active[rng.random_range(0..active.len())];
                api::drop_section(user, client, &student, gone).await?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// Log in once as this user's own student.
async fn login_once(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        session.student = api::login(user, Client::Plain, next_student()).await?;
        Ok(())
    })
}

/// [`login_once`] through the careful client.
async fn careful_login_once(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        session.student = api::login(user, Client::Careful, next_student()).await?;
        Ok(())
    })
}

/// Whether the student holds a place in the section after this enroll's answer (a seat,
/// a waitlist place, or one it already had), so a drop is due.
fn holds_place(answer: &Answer) -> bool {
    answer.verdict == Verdict::Accepted
        || matches!(
            answer.code.as_deref(),
            Some("already_enrolled" | "already_waitlisted")
        )
}

/// Enroll in a Zipf-chosen section of the hot set and drop it again, carefully.
async fn reshard_cycle(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let Some(student) = session.student.clone() else {
            session.student = api::login(user, Client::Careful, next_student()).await?;
            return Ok(());
        };
        let (sections, zipf) = HOT_SET.get().expect("build() fixes the hot set");
        let hot = sections[zipf.sample(&mut session.rng)];
        let answer = api::enroll(user, Client::Careful, &student, hot).await?;
        if holds_place(&answer) {
            api::drop_section(user, Client::Careful, &student, hot).await?;
        }
        Ok(())
    })
}

/// Enroll in the hot section, then drop it again so the next cycle is a fresh seat.
async fn hot_cycle(user: &mut GooseUser) -> TransactionResult {
    with_session!(user, session, {
        let Some(student) = session.student.clone() else {
            session.student = api::login(user, Client::Plain, next_student()).await?;
            return Ok(());
        };
        let hot = HOT_SECTIONS
            .get()
            .and_then(|h| h.first().copied())
            .expect("--hot-section is required for hot");
        let answer = api::enroll(user, Client::Plain, &student, hot).await?;
        if holds_place(&answer) {
            api::drop_section(user, Client::Plain, &student, hot).await?;
        }
        Ok(())
    })
}

async fn healthz(user: &mut GooseUser) -> TransactionResult {
    api::get_public(user, Op::Healthz, "/healthz", "healthz").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_go_round_robin_over_the_hosts() {
        let hosts: Vec<String> = ["http://a:1", "http://b:2", "http://c:3"]
            .map(String::from)
            .to_vec();
        let picked: Vec<&str> = (0..7).map(|i| host_for(i, &hosts)).collect();
        assert_eq!(
            picked,
            [
                "http://a:1",
                "http://b:2",
                "http://c:3",
                "http://a:1",
                "http://b:2",
                "http://c:3",
                "http://a:1"
            ]
        );
        assert_eq!(host_for(5, &hosts[..1]), "http://a:1");
    }
}
