//! `registrar cluster move | drain | rebalance`: ask a node for shard moves, then follow them
//! to their end on one progress line, polling every [`POLL`]. The exit status is the
//! outcome: success only when every move is `done` (and, for a drain, the node is `left`
//! with no shard). Stopping the command (ctrl-c, a timeout) stops the watching only; the
//! moves go on in the cluster. What the states mean is decided by the pure functions here
//! ([`move_outcome`], [`drain_outcome`], [`rebalance_outcome`]), so they are tested on
//! samples of the server's answers, which are the server's own types (`cluster::view`): a
//! state this client does not know fails as the answer is read, rather than being waited
//! on forever.

use super::Session;
use super::progress::{Progress, duration};
use crate::cluster::view::{
    ClusterView, DrainStarted, MoveRow, MoveStarted, MoveState, NodeState, RebalanceStarted,
};
use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use crate::cluster::view::RebalanceBy;

/// Time between two reads of a move or of the cluster.
pub const POLL: Duration = Duration::from_millis(200);

/// A shard move as this command follows it: first as asking for it answered
/// ([`MoveStarted`]), then as `GET /moves/{id}` shows it ([`MoveRow`]), which adds how it
/// ended.
#[derive(Clone, Debug)]
pub struct MoveStatus {
    /// Move id.
    pub id: i64,
    /// The shard handed off.
    pub shard: i32,
    /// Owner before.
    pub from: String,
    /// Owner after.
    pub to: String,
    /// Where it stands.
    pub state: MoveState,
    /// Why it failed.
    pub error: Option<String>,
    /// Requests the old owner held while the shard moved (not known when just asked).
    pub held_requests: Option<i32>,
    /// When it was asked for (not known when just asked).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<MoveStarted> for MoveStatus {
    fn from(m: MoveStarted) -> Self {
        Self {
            id: m.id,
            shard: m.shard,
            from: m.from,
            to: m.to,
            state: m.state,
            error: None,
            held_requests: None,
            started_at: None,
            finished_at: None,
        }
    }
}

impl From<MoveRow> for MoveStatus {
    fn from(mut m: MoveRow) -> Self {
        let (error, held, started, finished) =
            (m.error.take(), m.held_requests, m.started_at, m.finished_at);
        Self {
            error,
            held_requests: Some(held),
            started_at: Some(started),
            finished_at: finished,
            ..MoveStarted::from(m).into()
        }
    }
}

/// Where a move stands.
#[derive(Debug, PartialEq, Eq)]
pub enum MoveOutcome {
    /// `pending` or `running`: keep following.
    Open,
    /// Handed off.
    Done,
    /// Given up, with the server's reason.
    Failed(String),
}

/// The move's outcome from its state.
pub fn move_outcome(m: &MoveStatus) -> MoveOutcome {
    match m.state {
        MoveState::Pending | MoveState::Running => MoveOutcome::Open,
        MoveState::Done => MoveOutcome::Done,
        MoveState::Failed => MoveOutcome::Failed(
            m.error
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the server gave no reason".into()),
        ),
    }
}

impl MoveStatus {
    /// `move 42 (shard 17, node-2 -> node-3)`.
    pub fn title(&self) -> String {
        format!(
            "move {} (shard {}, {} -> {})",
            self.id, self.shard, self.from, self.to
        )
    }

    /// The progress line's news: title, state, held requests.
    pub fn news(&self) -> String {
        format!(
            "{}: {}{}",
            self.title(),
            self.state,
            held(self.held_requests)
        )
    }

    /// From asked for to ended, by the server's clock; `None` while open or when the
    /// times are missing.
    pub fn took(&self) -> Option<Duration> {
        (self.finished_at? - self.started_at?).to_std().ok()
    }

    /// `GET` path of this move.
    fn path(&self) -> String {
        format!("/api/v1/cluster/moves/{}", self.id)
    }
}

/// `, 3 held requests` (nothing when the server did not say).
fn held(n: Option<i32>) -> String {
    match n {
        None => String::new(),
        Some(1) => ", 1 held request".into(),
        Some(n) => format!(", {n} held requests"),
    }
}

/// The last line of `cluster move`: the final state and how long the move took (the
/// server's times, else `watched` by this client).
pub fn move_final_line(m: &MoveStatus, watched: Duration) -> String {
    let took = duration(m.took().unwrap_or(watched));
    match m.state {
        MoveState::Done => format!("{}: done in {took}{}", m.title(), held(m.held_requests)),
        MoveState::Failed => format!(
            "{}: failed after {took}{}: {}",
            m.title(),
            held(m.held_requests),
            m.error.as_deref().unwrap_or("the server gave no reason")
        ),
        state => format!("{}: {state} after {took}", m.title()),
    }
}

/// `registrar cluster move SHARD --to NODE`.
pub async fn move_shard(url: &str, shard: u32, to: &str) -> anyhow::Result<()> {
    let session = Session::open(url).await?;
    let started: MoveStarted = session
        .post(
            &format!("/api/v1/cluster/shards/{shard}/move"),
            &json!({ "to": to }),
        )
        .await?;
    let clock = Instant::now();
    let mut progress = Progress::stdout();
    let ended = follow_move(&session, started.into(), &mut progress, clock).await;
    let ended = match ended {
        Ok(m) => m,
        Err(e) => {
            progress.interrupt();
            return Err(e);
        }
    };
    progress.finish(&move_final_line(&ended, clock.elapsed()));
    match move_outcome(&ended) {
        MoveOutcome::Failed(error) => bail!("{} failed: {error}", ended.title()),
        MoveOutcome::Done | MoveOutcome::Open => Ok(()),
    }
}

/// Poll `m` until it is no longer open; its last state.
async fn follow_move(
    session: &Session,
    mut m: MoveStatus,
    progress: &mut Progress<std::io::Stdout>,
    clock: Instant,
) -> anyhow::Result<MoveStatus> {
    while move_outcome(&m) == MoveOutcome::Open {
        progress.update(&m.news(), clock.elapsed());
        tokio::time::sleep(POLL).await;
        m = session.get::<MoveRow>(&m.path()).await?.into();
    }
    Ok(m)
}

/// Where a drain stands, from the cluster view.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Still handing shards off.
    Moving {
        /// The node's state (`draining`, or `active` before the server marked it).
        state: NodeState,
        /// Shards it still owns.
        shards_left: usize,
        /// Moves off it not finished yet.
        moves: usize,
    },
    /// `left` with no shard: done.
    Left,
    /// It will not end `left`: the reason.
    Failed(String),
}

/// The drain of `node` as `view` shows it. `seen_draining`: an earlier view showed it
/// draining, so `active` again means the drain was abandoned rather than not started.
pub fn drain_outcome(view: &ClusterView, node: &str, seen_draining: bool) -> DrainOutcome {
    let Some(member) = view.nodes.iter().find(|n| n.id == node) else {
        return DrainOutcome::Failed(format!("{node} is no longer in the cluster view"));
    };
    match member.state {
        NodeState::Left if member.shards_owned == 0 => DrainOutcome::Left,
        NodeState::Dead => DrainOutcome::Failed(format!(
            "{node} ended dead (its lease ran out): its shards are failed over, not handed off"
        )),
        NodeState::Active | NodeState::Joining if seen_draining => DrainOutcome::Failed(format!(
            "{node} is {} again: the drain was abandoned",
            member.state
        )),
        state => DrainOutcome::Moving {
            state,
            shards_left: member.shards_owned,
            moves: view.moves.iter().filter(|m| m.from_node == node).count(),
        },
    }
}

/// The drain's progress news.
pub fn drain_news(node: &str, outcome: &DrainOutcome) -> String {
    match outcome {
        DrainOutcome::Moving {
            state,
            shards_left,
            moves,
        } => format!("drain {node}: {state}, {shards_left} shards left, {moves} moves in progress"),
        DrainOutcome::Left => format!("drain {node}: left, 0 shards"),
        DrainOutcome::Failed(why) => format!("drain {node}: failed: {why}"),
    }
}

/// `registrar cluster drain NODE`: ask for the drain, follow the cluster view until the
/// node is `left` with no shard. Everything after the credentials, the login included,
/// ends within `timeout` (and one poll), so a Kubernetes hook can budget for it.
pub async fn drain(url: &str, node: &str, timeout: Duration) -> anyhow::Result<()> {
    let credentials = super::credentials()?;
    let clock = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let late = || {
        anyhow!(
            "the drain of {node} did not end within {} s; it goes on in the cluster \
             (`registrar cluster status` shows it)",
            timeout.as_secs()
        )
    };
    // Before the drain is accepted, a timeout means it may never have been asked for.
    let unanswered = || {
        anyhow!(
            "no answer from {url} within {} s: the drain of {node} may not have started",
            timeout.as_secs()
        )
    };
    let session = tokio::time::timeout_at(deadline, Session::login(url, credentials))
        .await
        .map_err(|_| unanswered())??;
    let _started: DrainStarted = tokio::time::timeout_at(
        deadline,
        session.post(&format!("/api/v1/cluster/nodes/{node}/drain"), &json!({})),
    )
    .await
    .map_err(|_| unanswered())??;
    let mut progress = Progress::stdout();
    let mut seen_draining = false;
    let mut news = format!("drain {node}: asked for");
    loop {
        let view = match tokio::time::timeout_at(deadline, session.cluster()).await {
            Ok(Ok(view)) => view,
            Ok(Err(e)) => {
                progress.interrupt();
                return Err(e);
            }
            Err(_) => {
                progress.finish(&format!(
                    "{news}: not done after {}",
                    duration(clock.elapsed())
                ));
                return Err(late());
            }
        };
        let outcome = drain_outcome(&view, node, seen_draining);
        news = drain_news(node, &outcome);
        let elapsed = clock.elapsed();
        match outcome {
            DrainOutcome::Left => {
                progress.finish(&format!("{news}, in {}", duration(elapsed)));
                return Ok(());
            }
            DrainOutcome::Failed(why) => {
                progress.finish(&news);
                bail!("the drain of {node} failed: {why}");
            }
            DrainOutcome::Moving { ref state, .. } => {
                seen_draining |= *state == NodeState::Draining;
                if elapsed >= timeout {
                    progress.finish(&format!("{news}: not done after {}", duration(elapsed)));
                    return Err(late());
                }
                progress.update(&news, elapsed);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Where a rebalance stands: its moves counted by outcome.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RebalanceTally {
    /// `pending` or `running`.
    pub open: usize,
    /// `done`.
    pub done: usize,
    /// `failed`.
    pub failed: usize,
}

/// Count the moves of a rebalance.
pub fn rebalance_outcome(moves: &[MoveStatus]) -> RebalanceTally {
    let mut tally = RebalanceTally::default();
    for m in moves {
        match move_outcome(m) {
            MoveOutcome::Open => tally.open += 1,
            MoveOutcome::Done => tally.done += 1,
            MoveOutcome::Failed(_) => tally.failed += 1,
        }
    }
    tally
}

/// The rebalance's progress news.
pub fn rebalance_news(by: RebalanceBy, tally: &RebalanceTally) -> String {
    format!(
        "rebalance by {}: {} moves, {} open, {} done, {} failed",
        by.as_str(),
        tally.open + tally.done + tally.failed,
        tally.open,
        tally.done,
        tally.failed
    )
}

/// The summary once every move ended: counts, the slowest move, then one line per failed
/// move with its reason.
pub fn rebalance_summary(by: RebalanceBy, moves: &[MoveStatus], watched: Duration) -> String {
    let done = moves.iter().filter(|m| m.state == MoveState::Done).count();
    let failed: Vec<&MoveStatus> = moves
        .iter()
        .filter(|m| m.state == MoveState::Failed)
        .collect();
    let mut out = format!(
        "rebalance by {}: {} moves in {}: {done} done, {} failed",
        by.as_str(),
        moves.len(),
        duration(watched),
        failed.len()
    );
    let slowest = moves
        .iter()
        .filter_map(|m| m.took().map(|took| (took, m)))
        .max_by_key(|(took, _)| *took);
    if let Some((took, m)) = slowest {
        out.push_str(&format!("; slowest: {} {}", m.title(), duration(took)));
    }
    for m in failed {
        out.push_str(&format!(
            "\n  {} failed: {}",
            m.title(),
            m.error.as_deref().unwrap_or("the server gave no reason")
        ));
    }
    out
}

/// `registrar cluster rebalance [--by count|load]`.
pub async fn rebalance(url: &str, by: RebalanceBy) -> anyhow::Result<()> {
    let session = Session::open(url).await?;
    let started: RebalanceStarted = session
        .post("/api/v1/cluster/rebalance", &json!({ "by": by.as_str() }))
        .await?;
    let mut moves: Vec<MoveStatus> = started.moves.into_iter().map(MoveStatus::from).collect();
    if moves.is_empty() {
        println!("rebalance by {}: already balanced, no moves", by.as_str());
        return Ok(());
    }
    let clock = Instant::now();
    let mut progress = Progress::stdout();
    let followed = async {
        loop {
            let tally = rebalance_outcome(&moves);
            if tally.open == 0 {
                return anyhow::Ok(tally);
            }
            progress.update(&rebalance_news(by, &tally), clock.elapsed());
            tokio::time::sleep(POLL).await;
            refresh(&session, &mut moves).await?;
        }
    }
    .await;
    let tally = match followed {
        Ok(tally) => tally,
        Err(e) => {
            progress.interrupt();
            return Err(e);
        }
    };
    progress.finish(&rebalance_summary(by, &moves, clock.elapsed()));
    if tally.failed > 0 {
        bail!("{} of {} moves failed", tally.failed, moves.len());
    }
    Ok(())
}

/// Bring the open moves up to date: one read of the newest moves, and a read of its own
/// for an open move that newer moves pushed out of that list.
async fn refresh(session: &Session, moves: &mut [MoveStatus]) -> anyhow::Result<()> {
    // Ours are the newest but for those asked for since, which the margin covers.
    let limit = (moves.len() + 100).min(1000);
    let recent: Vec<MoveRow> = session
        .get(&format!("/api/v1/cluster/moves?limit={limit}"))
        .await?;
    let mut recent: HashMap<i64, MoveRow> = recent.into_iter().map(|m| (m.id, m)).collect();
    for m in moves.iter_mut() {
        if move_outcome(m) != MoveOutcome::Open {
            continue;
        }
        *m = match recent.remove(&m.id) {
            Some(fresh) => fresh.into(),
            None => session.get::<MoveRow>(&m.path()).await?.into(),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A move as `GET /moves/{id}` gives it.
    fn parse(json: &str) -> MoveStatus {
        serde_json::from_str::<MoveRow>(json)
            .expect("a move parses")
            .into()
    }

    /// A move as asking for it answers.
    fn started(json: &str) -> MoveStatus {
        serde_json::from_str::<MoveStarted>(json)
            .expect("a started move parses")
            .into()
    }

    const DONE: &str = r#"{"id": 42, "shard": 17, "from": "node-2", "to": "node-3",
        "reason": "operator", "requested_by": "operator", "state": "done", "error": null,
        "held_requests": 3, "started_at": "2026-11-22T07:00:00.100Z",
        "finished_at": "2026-11-22T07:00:00.450Z"}"#;
    const FAILED: &str = r#"{"id": 43, "shard": 18, "from": "node-2", "to": "node-3",
        "reason": "operator", "requested_by": "operator", "state": "failed",
        "error": "node-3 stopped being active", "held_requests": 0,
        "started_at": "2026-11-22T07:00:00Z", "finished_at": "2026-11-22T07:00:02.5Z"}"#;
    const RUNNING: &str = r#"{"id": 44, "shard": 19, "from": "node-1", "to": "node-3",
        "reason": "rebalance", "requested_by": "node-1",
        "state": "running", "error": null, "held_requests": 1,
        "started_at": "2026-11-22T07:00:00Z", "finished_at": null}"#;

    #[test]
    fn a_move_is_followed_while_open_and_decides_the_exit_status_once_ended() {
        assert_eq!(move_outcome(&parse(RUNNING)), MoveOutcome::Open);
        let just_asked =
            started(r#"{"id": 7, "shard": 1, "from": "a", "to": "b", "state": "pending"}"#);
        assert_eq!(move_outcome(&just_asked), MoveOutcome::Open);
        assert_eq!(move_outcome(&parse(DONE)), MoveOutcome::Done);
        assert_eq!(
            move_outcome(&parse(FAILED)),
            MoveOutcome::Failed("node-3 stopped being active".into())
        );
        let silent = parse(&FAILED.replace(r#""node-3 stopped being active""#, r#""""#));
        assert_eq!(
            move_outcome(&silent),
            MoveOutcome::Failed("the server gave no reason".into())
        );
        // A state this client does not know is an error as the answer is read, not a
        // reason to wait forever.
        let unknown = serde_json::from_str::<MoveRow>(&RUNNING.replace("running", "paused"));
        let error = unknown.unwrap_err().to_string();
        assert!(error.contains("`paused`"), "{error}");
    }

    #[test]
    fn move_lines_show_state_held_requests_and_the_servers_duration() {
        assert_eq!(
            parse(RUNNING).news(),
            "move 44 (shard 19, node-1 -> node-3): running, 1 held request"
        );
        assert_eq!(
            move_final_line(&parse(DONE), Duration::from_secs(9)),
            "move 42 (shard 17, node-2 -> node-3): done in 350ms, 3 held requests"
        );
        assert_eq!(
            move_final_line(&parse(FAILED), Duration::from_secs(9)),
            "move 43 (shard 18, node-2 -> node-3): failed after 2.5s, 0 held requests: \
             node-3 stopped being active"
        );
        // Without the server's times, the time this client watched.
        let bare = started(r#"{"id": 5, "shard": 5, "from": "a", "to": "b", "state": "done"}"#);
        assert_eq!(
            move_final_line(&bare, Duration::from_millis(1_500)),
            "move 5 (shard 5, a -> b): done in 1.5s"
        );
    }

    /// A cluster view as the server writes it, of `nodes` (id, state, shards owned) and
    /// the open `moves` (id, shard, from, to, state).
    fn view(nodes: &[(&str, &str, usize)], moves: &[(i64, i32, &str, &str, &str)]) -> ClusterView {
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|(id, state, owned)| {
                json!({"id": id, "address": format!("http://{id}"), "state": state,
                    "lease_age_ms": 100, "shards_owned": owned,
                    "load": {"decisions_per_s": 0.0, "in_flight": 0, "requests_per_s": 0.0,
                        "p99_ms": null, "overloaded_per_s": 0.0, "broker_connected": true,
                        "redis": "ok"}})
            })
            .collect();
        let moves: Vec<Value> = moves
            .iter()
            .map(|(id, shard, from, to, state)| {
                json!({"id": id, "shard": shard, "from": from, "to": to, "reason": "drain",
                    "requested_by": "node-1", "state": state, "error": null,
                    "held_requests": 0, "started_at": "2026-11-22T07:00:00Z",
                    "finished_at": null})
            })
            .collect();
        serde_json::from_value(json!({"shards": 64, "coordinator": "node-1",
            "nodes": nodes, "moves": moves, "outbox_backlog": 0,
            "at": "2026-11-22T07:00:01Z"}))
        .expect("a cluster view parses")
    }

    #[test]
    fn a_drain_is_followed_until_the_node_is_left_with_no_shard() {
        let draining = view(
            &[("node-1", "active", 40), ("node-2", "draining", 24)],
            &[
                (1, 3, "node-2", "node-1", "running"),
                (2, 4, "node-2", "node-1", "pending"),
                (3, 9, "node-1", "node-3", "running"),
            ],
        );
        let moving = drain_outcome(&draining, "node-2", false);
        assert_eq!(
            moving,
            DrainOutcome::Moving {
                state: NodeState::Draining,
                shards_left: 24,
                moves: 2
            }
        );
        assert_eq!(
            drain_news("node-2", &moving),
            "drain node-2: draining, 24 shards left, 2 moves in progress"
        );
        let left = view(&[("node-1", "active", 64), ("node-2", "left", 0)], &[]);
        assert_eq!(drain_outcome(&left, "node-2", true), DrainOutcome::Left);
        // `left` with shards still counted: the map has not caught up yet.
        let lagging = view(&[("n", "left", 1)], &[]);
        assert!(matches!(
            drain_outcome(&lagging, "n", true),
            DrainOutcome::Moving { shards_left: 1, .. }
        ));
    }

    #[test]
    fn a_drain_fails_when_the_node_dies_vanishes_or_turns_active_again() {
        let dead = view(&[("n", "dead", 2)], &[]);
        assert!(
            matches!(drain_outcome(&dead, "n", true), DrainOutcome::Failed(why) if why.contains("dead"))
        );
        assert!(matches!(
            drain_outcome(&dead, "other", false),
            DrainOutcome::Failed(why) if why.contains("no longer in the cluster view")
        ));
        let active = view(&[("n", "active", 2)], &[]);
        // Not marked yet: wait; marked and back to active: abandoned.
        assert!(matches!(
            drain_outcome(&active, "n", false),
            DrainOutcome::Moving { .. }
        ));
        assert!(matches!(
            drain_outcome(&active, "n", true),
            DrainOutcome::Failed(why) if why.contains("abandoned")
        ));
    }

    #[test]
    fn a_rebalance_counts_its_moves_and_fails_if_any_failed() {
        let moves = vec![parse(DONE), parse(FAILED), parse(RUNNING)];
        let tally = rebalance_outcome(&moves);
        assert_eq!(
            tally,
            RebalanceTally {
                open: 1,
                done: 1,
                failed: 1
            }
        );
        assert_eq!(
            rebalance_news(RebalanceBy::Load, &tally),
            "rebalance by load: 3 moves, 1 open, 1 done, 1 failed"
        );
        let ended = vec![parse(DONE), parse(FAILED)];
        assert_eq!(
            rebalance_summary(RebalanceBy::Count, &ended, Duration::from_secs(3)),
            "rebalance by count: 2 moves in 3.0s: 1 done, 1 failed; \
             slowest: move 43 (shard 18, node-2 -> node-3) 2.5s\n  \
             move 43 (shard 18, node-2 -> node-3) failed: node-3 stopped being active"
        );
        let all_done = rebalance_outcome(&[parse(DONE)]);
        assert_eq!((all_done.open, all_done.failed), (0, 0));
    }

    #[test]
    fn a_rebalance_answer_parses_with_or_without_moves() {
        let answer: RebalanceStarted = serde_json::from_str(
            r#"{"moves": [{"id": 5, "shard": 2, "from": "a", "to": "b", "state": "pending"}]}"#,
        )
        .unwrap();
        let first = MoveStatus::from(answer.moves[0].clone());
        assert_eq!(first.title(), "move 5 (shard 2, a -> b)");
        let none: RebalanceStarted = serde_json::from_str(r#"{"moves": []}"#).unwrap();
        assert!(none.moves.is_empty());
    }
}
