//! `registrar cluster move | drain | rebalance`: ask a node for shard moves, then follow them
//! to their end on one progress line, polling every [`POLL`]. The exit status is the
//! outcome: success only when every move is `done` (and, for a drain, the node is `left`
//! with no shard). Stopping the command (ctrl-c, a timeout) stops the watching only; the
//! moves go on in the cluster. What the states mean is decided by the pure functions here
//! ([`move_outcome`], [`drain_outcome`], [`rebalance_outcome`]), so they are tested on
//! samples of the server's answers.

use super::Session;
use super::progress::{Progress, duration};
use super::status::{ClusterView, plain};
use anyhow::{anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Time between two reads of a move or of the cluster.
pub const POLL: Duration = Duration::from_millis(200);

/// What `rebalance` evens out over the active nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RebalanceBy {
    /// The number of shards each node owns.
    Count,
    /// The load each node reports (the hottest shards leave the busiest nodes).
    Load,
}

impl RebalanceBy {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Load => "load",
        }
    }
}

/// A shard move as `POST .../move`, `POST /rebalance` and `GET /moves/{id}` give it (the
/// first two without the fields after `state`).
#[derive(Clone, Debug, Deserialize)]
pub struct MoveStatus {
    /// Move id.
    pub id: Value,
    /// The shard handed off.
    #[serde(default)]
    pub shard: Value,
    /// Owner before.
    #[serde(default)]
    pub from: Value,
    /// Owner after.
    #[serde(default)]
    pub to: Value,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Requests the old owner held while the shard moved.
    #[serde(default)]
    pub held_requests: Option<u64>,
    /// When it was asked for (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    #[serde(default)]
    pub finished_at: Option<String>,
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

/// The move's outcome from its state; a state this client does not know is an error rather
/// than a reason to wait forever.
pub fn move_outcome(m: &MoveStatus) -> anyhow::Result<MoveOutcome> {
    Ok(match m.state.as_str() {
        "pending" | "running" => MoveOutcome::Open,
        "done" => MoveOutcome::Done,
        "failed" => MoveOutcome::Failed(
            m.error
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the server gave no reason".into()),
        ),
        other => bail!(
            "move {} is `{other}`, a state this client does not know",
            plain(&m.id)
        ),
    })
}

impl MoveStatus {
    /// `move 42 (shard 17, node-2 -> node-3)`.
    pub fn title(&self) -> String {
        format!(
            "move {} (shard {}, {} -> {})",
            plain(&self.id),
            plain(&self.shard),
            plain(&self.from),
            plain(&self.to)
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
        let at = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        };
        (at(&self.finished_at)? - at(&self.started_at)?)
            .to_std()
            .ok()
    }

    /// `GET` path of this move.
    fn path(&self) -> String {
        format!("/api/v1/cluster/moves/{}", plain(&self.id))
    }
}

/// `, 3 held requests` (nothing when the server did not say).
fn held(n: Option<u64>) -> String {
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
    match m.state.as_str() {
        "done" => format!("{}: done in {took}{}", m.title(), held(m.held_requests)),
        "failed" => format!(
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
    let started: MoveStatus = session
        .post(
            &format!("/api/v1/cluster/shards/{shard}/move"),
            &json!({ "to": to }),
        )
        .await?;
    let clock = Instant::now();
    let mut progress = Progress::stdout();
    let ended = follow_move(&session, started, &mut progress, clock).await;
    let ended = match ended {
        Ok(m) => m,
        Err(e) => {
            progress.interrupt();
            return Err(e);
        }
    };
    progress.finish(&move_final_line(&ended, clock.elapsed()));
    match move_outcome(&ended)? {
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
    while move_outcome(&m)? == MoveOutcome::Open {
        progress.update(&m.news(), clock.elapsed());
        tokio::time::sleep(POLL).await;
        m = session.get(&m.path()).await?;
    }
    Ok(m)
}

/// Where a drain stands, from the cluster view.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Still handing shards off.
    Moving {
        /// The node's state (`draining`, or `active` before the server marked it).
        state: String,
        /// Shards it still owns.
        shards_left: u32,
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
    match member.state.as_str() {
        "left" if member.shards_owned == 0 => DrainOutcome::Left,
        "dead" => DrainOutcome::Failed(format!(
            "{node} ended dead (its lease ran out): its shards are failed over, not handed off"
        )),
        "active" | "joining" if seen_draining => DrainOutcome::Failed(format!(
            "{node} is {} again: the drain was abandoned",
            member.state
        )),
        state => DrainOutcome::Moving {
            state: state.to_string(),
            shards_left: member.shards_owned,
            moves: view
                .moves
                .iter()
                .filter(|m| m.from.as_str() == Some(node))
                .count(),
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
    let _started: Value = tokio::time::timeout_at(
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
                seen_draining |= state == "draining";
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

/// `POST /rebalance`'s answer.
#[derive(Deserialize)]
struct RebalanceStarted {
    /// The moves asked for; none when already balanced.
    moves: Vec<MoveStatus>,
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

/// Count the moves of a rebalance; a state this client does not know is an error.
pub fn rebalance_outcome(moves: &[MoveStatus]) -> anyhow::Result<RebalanceTally> {
    let mut tally = RebalanceTally::default();
    for m in moves {
        match move_outcome(m)? {
            MoveOutcome::Open => tally.open += 1,
            MoveOutcome::Done => tally.done += 1,
            MoveOutcome::Failed(_) => tally.failed += 1,
        }
    }
    Ok(tally)
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
    let done = moves.iter().filter(|m| m.state == "done").count();
    let failed: Vec<&MoveStatus> = moves.iter().filter(|m| m.state == "failed").collect();
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
    let mut moves = started.moves;
    if moves.is_empty() {
        println!("rebalance by {}: already balanced, no moves", by.as_str());
        return Ok(());
    }
    let clock = Instant::now();
    let mut progress = Progress::stdout();
    let followed = async {
        loop {
            let tally = rebalance_outcome(&moves)?;
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
    let recent: Vec<MoveStatus> = session
        .get(&format!("/api/v1/cluster/moves?limit={limit}"))
        .await?;
    let mut recent: HashMap<String, MoveStatus> =
        recent.into_iter().map(|m| (plain(&m.id), m)).collect();
    for m in moves.iter_mut() {
        if move_outcome(m)? != MoveOutcome::Open {
            continue;
        }
        *m = match recent.remove(&plain(&m.id)) {
            Some(fresh) => fresh,
            None => session.get(&m.path()).await?,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> MoveStatus {
        serde_json::from_str(json).expect("a move parses")
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
        "state": "running", "error": null, "held_requests": 1,
        "started_at": "2026-11-22T07:00:00Z", "finished_at": null}"#;

    #[test]
    fn a_move_is_followed_while_open_and_decides_the_exit_status_once_ended() {
        assert_eq!(move_outcome(&parse(RUNNING)).unwrap(), MoveOutcome::Open);
        let started = parse(r#"{"id": 7, "shard": 1, "from": "a", "to": "b", "state": "pending"}"#);
        assert_eq!(move_outcome(&started).unwrap(), MoveOutcome::Open);
        assert_eq!(move_outcome(&parse(DONE)).unwrap(), MoveOutcome::Done);
        assert_eq!(
            move_outcome(&parse(FAILED)).unwrap(),
            MoveOutcome::Failed("node-3 stopped being active".into())
        );
        let silent = parse(r#"{"id": 8, "state": "failed", "error": ""}"#);
        assert_eq!(
            move_outcome(&silent).unwrap(),
            MoveOutcome::Failed("the server gave no reason".into())
        );
        let unknown = parse(r#"{"id": 9, "state": "paused"}"#);
        let error = move_outcome(&unknown).unwrap_err().to_string();
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
        let bare = parse(r#"{"id": "m1", "shard": 5, "from": "a", "to": "b", "state": "done"}"#);
        assert_eq!(
            move_final_line(&bare, Duration::from_millis(1_500)),
            "move m1 (shard 5, a -> b): done in 1.5s"
        );
    }

    fn view(json: &str) -> ClusterView {
        serde_json::from_str(json).expect("a cluster view parses")
    }

    const DRAINING: &str = r#"{"shards": 64, "nodes": [
        {"id": "node-1", "state": "active", "shards_owned": 40},
        {"id": "node-2", "state": "draining", "shards_owned": 24}],
        "moves": [
        {"id": 1, "shard": 3, "from": "node-2", "to": "node-1", "state": "running"},
        {"id": 2, "shard": 4, "from": "node-2", "to": "node-1", "state": "pending"},
        {"id": 3, "shard": 9, "from": "node-1", "to": "node-3", "state": "running"}]}"#;

    #[test]
    fn a_drain_is_followed_until_the_node_is_left_with_no_shard() {
        let moving = drain_outcome(&view(DRAINING), "node-2", false);
        assert_eq!(
            moving,
            DrainOutcome::Moving {
                state: "draining".into(),
                shards_left: 24,
                moves: 2
            }
        );
        assert_eq!(
            drain_news("node-2", &moving),
            "drain node-2: draining, 24 shards left, 2 moves in progress"
        );
        let left = view(
            r#"{"shards": 64, "nodes": [{"id": "node-1", "state": "active", "shards_owned": 64},
               {"id": "node-2", "state": "left", "shards_owned": 0}]}"#,
        );
        assert_eq!(drain_outcome(&left, "node-2", true), DrainOutcome::Left);
        // `left` with shards still counted: the map has not caught up yet.
        let lagging =
            view(r#"{"shards": 4, "nodes": [{"id": "n", "state": "left", "shards_owned": 1}]}"#);
        assert!(matches!(
            drain_outcome(&lagging, "n", true),
            DrainOutcome::Moving { shards_left: 1, .. }
        ));
    }

    #[test]
    fn a_drain_fails_when_the_node_dies_vanishes_or_turns_active_again() {
        let dead =
            view(r#"{"shards": 4, "nodes": [{"id": "n", "state": "dead", "shards_owned": 2}]}"#);
        assert!(
            matches!(drain_outcome(&dead, "n", true), DrainOutcome::Failed(why) if why.contains("dead"))
        );
        assert!(matches!(
            drain_outcome(&dead, "other", false),
            DrainOutcome::Failed(why) if why.contains("no longer in the cluster view")
        ));
        let active =
            view(r#"{"shards": 4, "nodes": [{"id": "n", "state": "active", "shards_owned": 2}]}"#);
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
        let tally = rebalance_outcome(&moves).unwrap();
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
        let all_done = rebalance_outcome(&[parse(DONE)]).unwrap();
        assert_eq!((all_done.open, all_done.failed), (0, 0));
    }

    #[test]
    fn a_rebalance_answer_parses_with_or_without_moves() {
        let started: RebalanceStarted = serde_json::from_str(
            r#"{"moves": [{"id": 5, "shard": 2, "from": "a", "to": "b", "state": "pending"}]}"#,
        )
        .unwrap();
        assert_eq!(started.moves[0].title(), "move 5 (shard 2, a -> b)");
        let none: RebalanceStarted = serde_json::from_str(r#"{"moves": []}"#).unwrap();
        assert!(none.moves.is_empty());
    }
}
