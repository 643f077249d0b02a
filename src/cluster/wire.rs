//! The binary transport between nodes: a few long-lived TCP connections per peer, opened by
//! an HTTP/1.1 upgrade on the peer's own port (so it needs no other port, and the internal
//! key is checked once per connection, not once per call), then length-prefixed frames in
//! both directions. Many calls share a connection, each under its own call id, and every
//! frame ready to go is written with one flush (one syscall), as the group commit batches
//! rows for PostgreSQL.
//!
//! A frame is `[version][kind][call id: u64][head length: u32][head][body]`: the head is
//! MessagePack with named fields (a newer node may add a field an older one skips; a new
//! kind of message comes with a new version, agreed at the upgrade), the body raw bytes.
//! A peer that does not speak the wire (404 at the upgrade: an older node, or one run with
//! `transport = "http"`) is asked over HTTP instead, for a while ([`WireError::Unsupported`]).
//!
//! What a failure means is what it means on the HTTP hop ([`PeerError`]): a connection that
//! could not be opened, or a call the peer refused because it is closing (it answers such
//! calls [`Kind::Refused`] without running them), never left this node (`Unreached`); a
//! connection lost, or no answer in time, with a call on it is in doubt (`Transport`).
//! Each side pings; a connection silent for [`SILENCE_LIMIT`] is closed, and so is one that
//! said nothing since a call that timed out was sent.
//!
//! The serving side ([`serve`]) runs each call in a task of the node's [`Sessions`], which
//! a stopping node closes: every connection is told [`Kind::GoAway`], new calls are
//! refused, and the calls under way are answered before the connections close.

use super::hop::{INTERNAL_KEY, PeerError, SectionAnswer, SectionCall};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use futures_util::{SinkExt, StreamExt};
use registrar_actors::SectionId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::task::TaskTracker;

/// The newest frame version this node speaks.
pub const VERSION: u8 = 1;
/// The `Upgrade` protocol name.
pub const UPGRADE: &str = "registrar-wire";
/// The header carrying the version: the client's newest, and the one the server chose.
pub const VERSION_HEADER: &str = "x-registrar-wire";
/// The path the upgrade is asked on.
pub const PATH: &str = "/internal/v1/wire";
/// Largest frame accepted (a forwarded request's body is far below it).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Connections per peer.
const CONNECTIONS: usize = 2;
/// How often each side says it is alive.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A connection silent this long is dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(6);
/// How long a peer that answered 404 to the upgrade is asked over HTTP.
const UNSUPPORTED_FOR: Duration = Duration::from_secs(30);
/// Opening a connection, upgrade included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A section command for the peer's actor (head: [`SectionRequest`]).
    SectionCall = 1,
    /// Its answer (head: [`SectionAnswer`]).
    SectionAnswer = 2,
    /// A client's request to serve on the peer (head and body defined by the caller).
    Forward = 3,
    /// Its answer.
    Forwarded = 4,
    /// Alive?
    Ping = 5,
    /// Alive.
    Pong = 6,
    /// The server is closing: open a new connection for new calls.
    GoAway = 7,
    /// The call was not run (the server is closing).
    Refused = 8,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::SectionCall,
            2 => Kind::SectionAnswer,
            3 => Kind::Forward,
            4 => Kind::Forwarded,
            5 => Kind::Ping,
            6 => Kind::Pong,
            7 => Kind::GoAway,
            8 => Kind::Refused,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// What it carries.
    pub kind: Kind,
    /// The call it belongs to (0 for pings).
    pub id: u64,
    /// MessagePack.
    pub head: Bytes,
    /// Raw bytes.
    pub body: Bytes,
}

impl Frame {
    fn bare(kind: Kind, id: u64) -> Self {
        Self {
            kind,
            id,
            head: Bytes::new(),
            body: Bytes::new(),
        }
    }

    /// The frame's bytes (without the length prefix the codec adds).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(14 + self.head.len() + self.body.len());
        out.put_u8(VERSION);
        out.put_u8(self.kind as u8);
        out.put_u64(self.id);
        out.put_u32(self.head.len() as u32);
        out.put_slice(&self.head);
        out.put_slice(&self.body);
        out.freeze()
    }

    /// A frame read off the wire.
    pub fn decode(mut bytes: Bytes) -> Result<Self, String> {
        if bytes.len() < 14 {
            return Err(format!("a frame of {} bytes", bytes.len()));
        }
        let version = bytes.get_u8();
        if version == 0 || version > VERSION {
            return Err(format!(
                "frame version {version}; this node speaks {VERSION}"
            ));
        }
        let kind = bytes.get_u8();
        let kind = Kind::from_u8(kind).ok_or_else(|| format!("unknown frame kind {kind}"))?;
        let id = bytes.get_u64();
        let head_len = bytes.get_u32() as usize;
        if head_len > bytes.len() {
            return Err("a frame's head runs past its end".into());
        }
        let head = bytes.split_to(head_len);
        Ok(Self {
            kind,
            id,
            head,
            body: bytes,
        })
    }
}

/// `value` as MessagePack with named fields.
pub fn pack<T: Serialize>(value: &T) -> Bytes {
    rmp_serde::to_vec_named(value)
        .expect("our messages always serialize")
        .into()
}

/// A value read from MessagePack.
pub fn unpack<T: serde::de::DeserializeOwned>(head: &[u8]) -> Result<T, PeerError> {
    rmp_serde::from_slice(head).map_err(|e| PeerError::Protocol(format!("bad frame head: {e}")))
}

/// A section command for a peer's actor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SectionRequest {
    /// The section.
    pub section: SectionId,
    /// The call.
    pub call: SectionCall,
}

/// Why a call over the wire got no answer.
#[derive(Debug)]
pub enum WireError {
    /// The peer does not speak the wire: ask it over HTTP (nothing was sent).
    Unsupported,
    /// As on the HTTP hop.
    Peer(PeerError),
}

impl From<PeerError> for WireError {
    fn from(e: PeerError) -> Self {
        WireError::Peer(e)
    }
}

/// What a connection's tasks and its callers share.
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Frame>>>,
    /// New calls may use it.
    open: AtomicBool,
    /// When a frame last arrived, in milliseconds since `born`.
    last_heard: AtomicU64,
    born: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Close for good: every call still waiting learns the connection is lost.
    fn fail_all(&self) {
        self.open.store(false, Ordering::Release);
        self.pending.lock().expect("pending lock").clear();
    }
}

/// One client connection to a peer.
struct Conn {
    out: mpsc::UnboundedSender<Frame>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    /// Dropping it (with the connection) ends the reader; closing `out` ends the writer.
    kill: watch::Sender<bool>,
}

impl Conn {
    fn usable(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.shared.fail_all();
        let _ = self.kill.send(true);
    }

    async fn call(
        &self,
        kind: Kind,
        head: Bytes,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Frame, PeerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .expect("pending lock")
            .insert(id, tx);
        let sent_at = self.shared.now_ms();
        let frame = Frame {
            kind,
            id,
            head,
            body,
        };
        if self.out.send(frame).is_err() || !self.usable() {
            self.shared
                .pending
                .lock()
                .expect("pending lock")
                .remove(&id);
            return Err(PeerError::Unreached(
                "the connection to the peer closed".into(),
            ));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(frame)) if frame.kind == Kind::Refused => Err(PeerError::Unreached(
                "the peer is closing and did not run the call".into(),
            )),
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(_)) => Err(PeerError::Transport(
                "the connection to the peer was lost".into(),
            )),
            Err(_) => {
                self.shared
                    .pending
                    .lock()
                    .expect("pending lock")
                    .remove(&id);
                // Nothing heard since the call left: the connection is dead, not just slow.
                if self.shared.last_heard.load(Ordering::Relaxed) < sent_at {
                    self.close();
                }
                Err(PeerError::Transport(
                    "the peer did not answer in time".into(),
                ))
            }
        }
    }

    /// Open a connection to `addr` (`host:port`) and start its tasks.
    async fn open(addr: &str, key: &str) -> Result<Arc<Self>, WireError> {
        let io = tokio::time::timeout(CONNECT_TIMEOUT, handshake(addr, key))
            .await
            .map_err(|_| PeerError::Unreached(format!("{addr}: no connection in time")))??;
        let (sink, stream) = Framed::new(io, codec()).split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            open: AtomicBool::new(true),
            last_heard: AtomicU64::new(0),
            born: Instant::now(),
        });
        let (out, rx) = mpsc::unbounded_channel();
        let (kill, killed) = watch::channel(false);
        tokio::spawn(write_frames(sink, rx, true));
        tokio::spawn(read_answers(stream, shared.clone(), killed));
        Ok(Arc::new(Self {
            out,
            shared,
            next_id: AtomicU64::new(1),
            kill,
        }))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.fail_all();
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Connect and ask for the upgrade; the stream is the wire's once the peer answers 101.
async fn handshake(addr: &str, key: &str) -> Result<BufReader<TcpStream>, WireError> {
    let unreached = |e: std::io::Error| PeerError::Unreached(format!("{addr}: {e}"));
    let mut stream = TcpStream::connect(addr).await.map_err(unreached)?;
    stream.set_nodelay(true).map_err(unreached)?;
    let ask = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE}\r\n\
         {VERSION_HEADER}: {VERSION}\r\n{INTERNAL_KEY}: {key}\r\n\r\n"
    );
    stream.write_all(ask.as_bytes()).await.map_err(unreached)?;
    // Read the answer's head line by line: the wire's first bytes stay in the buffer.
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.map_err(unreached)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut version = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).await.map_err(unreached)? == 0 {
            return Err(PeerError::Unreached(format!("{addr}: closed during the upgrade")).into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case(VERSION_HEADER)
        {
            version = value.trim().parse::<u8>().ok();
        }
    }
    match (status.as_str(), version) {
        ("101", Some(v)) if (1..=VERSION).contains(&v) => Ok(reader),
        ("404" | "405", _) => Err(WireError::Unsupported),
        _ => Err(PeerError::Unreached(format!(
            "{addr}: the upgrade was answered {status} (wire version {version:?})"
        ))
        .into()),
    }
}

/// Write every frame as it comes, flushing once per batch of frames ready together; a
/// client pings when idle.
async fn write_frames<IO: AsyncRead + AsyncWrite + Unpin>(
    mut sink: futures_util::stream::SplitSink<Framed<IO, LengthDelimitedCodec>, Bytes>,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    ping: bool,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
            _ = tick.tick(), if ping => Frame::bare(Kind::Ping, 0),
        };
        if sink.feed(first.encode()).await.is_err() {
            return;
        }
        // Let the tasks that are ready run first: the frames they produce join this
        // flush instead of each paying a write of its own.
        tokio::task::yield_now().await;
        while let Ok(frame) = rx.try_recv() {
            if sink.feed(frame.encode()).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Hand each answer to its caller; end (failing every waiting call) when the connection
/// fails, stays silent too long, or is dropped.
async fn read_answers<IO: AsyncRead + AsyncWrite + Unpin>(
    mut stream: futures_util::stream::SplitStream<Framed<IO, LengthDelimitedCodec>>,
    shared: Arc<Shared>,
    mut killed: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(SILENCE_LIMIT, stream.next()) => next,
            _ = killed.changed() => break,
        };
        let Ok(Some(Ok(bytes))) = next else { break };
        shared.last_heard.store(shared.now_ms(), Ordering::Relaxed);
        let Ok(frame) = Frame::decode(bytes.freeze()) else {
            break;
        };
        match frame.kind {
            Kind::Pong | Kind::Ping => {}
            Kind::GoAway => shared.open.store(false, Ordering::Release),
            _ => {
                let waiter = shared
                    .pending
                    .lock()
                    .expect("pending lock")
                    .remove(&frame.id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(frame);
                }
            }
        }
    }
    shared.fail_all();
}

/// The connections to one peer.
#[derive(Default)]
struct Link {
    slots: [Mutex<Option<Arc<Conn>>>; CONNECTIONS],
    opening: [tokio::sync::Mutex<()>; CONNECTIONS],
    next: AtomicUsize,
    unsupported_until: Mutex<Option<Instant>>,
}

/// The client side: calls to peers (see module docs).
pub struct WireClient {
    key: String,
    links: DashMap<String, Arc<Link>>,
}

impl WireClient {
    /// A client presenting the internal `key` at each upgrade.
    pub fn new(key: String) -> Self {
        Self {
            key,
            links: DashMap::new(),
        }
    }

    /// The `host:port` of a peer's base URL, if the wire can reach it (plain HTTP only).
    fn address(base: &str) -> Option<&str> {
        let rest = base.strip_prefix("http://")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }

    async fn conn(&self, base: &str) -> Result<Arc<Conn>, WireError> {
        let addr = Self::address(base).ok_or(WireError::Unsupported)?;
        let link = match self.links.get(addr) {
            Some(link) => link.clone(),
            None => self.links.entry(addr.to_string()).or_default().clone(),
        };
        if let Some(until) = *link.unsupported_until.lock().expect("link lock")
            && Instant::now() < until
        {
            return Err(WireError::Unsupported);
        }
        let i = link.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS;
        let live = |link: &Link| {
            link.slots[i]
                .lock()
                .expect("slot lock")
                .as_ref()
                .filter(|c| c.usable())
                .cloned()
        };
        if let Some(conn) = live(&link) {
            return Ok(conn);
        }
        let _opening = link.opening[i].lock().await;
        if let Some(conn) = live(&link) {
            return Ok(conn);
        }
        match Conn::open(addr, &self.key).await {
            Ok(conn) => {
                *link.slots[i].lock().expect("slot lock") = Some(conn.clone());
                Ok(conn)
            }
            Err(WireError::Unsupported) => {
                *link.unsupported_until.lock().expect("link lock") =
                    Some(Instant::now() + UNSUPPORTED_FOR);
                Err(WireError::Unsupported)
            }
            Err(e) => Err(e),
        }
    }

    /// Ask the owner at `base` to decide `call` on `section`, waiting at most `timeout`.
    pub async fn call_section(
        &self,
        base: &str,
        section: SectionId,
        call: &SectionCall,
        timeout: Duration,
    ) -> Result<SectionAnswer, WireError> {
        let conn = self.conn(base).await?;
        let head = pack(&SectionRequest {
            section,
            call: call.clone(),
        });
        let frame = conn
            .call(Kind::SectionCall, head, Bytes::new(), timeout)
            .await?;
        expect(&frame, Kind::SectionAnswer)?;
        Ok(unpack(&frame.head)?)
    }

    /// Send a forwarded request (its head and body, as the caller packed them) to `base`;
    /// the answer's head and body.
    pub async fn forward(
        &self,
        base: &str,
        head: Bytes,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(Bytes, Bytes), WireError> {
        let conn = self.conn(base).await?;
        let frame = conn.call(Kind::Forward, head, body, timeout).await?;
        expect(&frame, Kind::Forwarded)?;
        Ok((frame.head, frame.body))
    }
}

fn expect(frame: &Frame, kind: Kind) -> Result<(), PeerError> {
    if frame.kind == kind {
        Ok(())
    } else {
        Err(PeerError::Protocol(format!(
            "expected a {kind:?} frame, got {:?}",
            frame.kind
        )))
    }
}

/// What a node does with the calls peers send it.
pub trait Handler: Send + Sync + 'static {
    /// Decide a section command.
    fn section_call(&self, request: SectionRequest) -> impl Future<Output = SectionAnswer> + Send;
    /// Serve a forwarded request: the answer's head and body.
    fn forward(&self, head: Bytes, body: Bytes) -> impl Future<Output = (Bytes, Bytes)> + Send;
}

/// The serving side's connections, closed together when the node stops.
pub struct Sessions {
    calls: TaskTracker,
    closing: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            calls: TaskTracker::new(),
            closing: watch::channel(false).0,
            done: watch::channel(false).0,
        }
    }
}

impl Sessions {
    /// Refuse new calls (every connection is told to go away), wait at most `patience` for
    /// the calls under way to be answered, then close every connection.
    pub async fn close(&self, patience: Duration) {
        self.closing.send_replace(true);
        self.calls.close();
        if tokio::time::timeout(patience, self.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!("calls from peers still running at shutdown; their answers are lost");
        }
        self.done.send_replace(true);
    }
}

/// Serve one upgraded connection until the peer closes it, it falls silent, or `sessions`
/// closes.
pub async fn serve<IO, H>(io: IO, handler: Arc<H>, sessions: Arc<Sessions>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let (sink, mut stream) = Framed::new(io, codec()).split();
    let (out, rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(write_frames(sink, rx, false));
    let mut closing = sessions.closing.subscribe();
    let mut done = sessions.done.subscribe();
    let mut told = false;
    loop {
        if *closing.borrow_and_update() && !told {
            told = true;
            let _ = out.send(Frame::bare(Kind::GoAway, 0));
        }
        let next = tokio::select! {
            next = tokio::time::timeout(SILENCE_LIMIT, stream.next()) => next,
            _ = closing.changed(), if !told => continue,
            _ = done.wait_for(|d| *d) => break,
        };
        let Ok(Some(Ok(bytes))) = next else { break };
        let frame = match Frame::decode(bytes.freeze()) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "a peer sent a frame this node cannot read; closing");
                break;
            }
        };
        let id = frame.id;
        match frame.kind {
            Kind::Ping => {
                let _ = out.send(Frame::bare(Kind::Pong, 0));
            }
            Kind::SectionCall | Kind::Forward if told => {
                let _ = out.send(Frame::bare(Kind::Refused, id));
            }
            Kind::SectionCall => {
                let (handler, out) = (handler.clone(), out.clone());
                sessions.calls.spawn(async move {
                    let answer = match unpack::<SectionRequest>(&frame.head) {
                        Ok(request) => handler.section_call(request).await,
                        Err(e) => SectionAnswer::Unavailable {
                            message: e.to_string(),
                        },
                    };
                    let _ = out.send(Frame {
                        kind: Kind::SectionAnswer,
                        id,
                        head: pack(&answer),
                        body: Bytes::new(),
                    });
                });
            }
            Kind::Forward => {
                let (handler, out) = (handler.clone(), out.clone());
                sessions.calls.spawn(async move {
                    let (head, body) = handler.forward(frame.head, frame.body).await;
                    let _ = out.send(Frame {
                        kind: Kind::Forwarded,
                        id,
                        head,
                        body,
                    });
                });
            }
            // Answers and notices are for clients; a server ignores them.
            _ => {}
        }
    }
    drop(out);
    // The calls under way hold the writer open until they have answered.
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let frame = Frame {
            kind: Kind::Forward,
            id: 42,
            head: Bytes::from_static(b"head"),
            body: Bytes::from_static(b"the body"),
        };
        assert_eq!(Frame::decode(frame.encode()).unwrap(), frame);
        let mut newer = frame.encode().to_vec();
        newer[0] = VERSION + 1;
        assert!(Frame::decode(newer.into()).is_err());
        let mut unknown = frame.encode().to_vec();
        unknown[1] = 99;
        assert!(Frame::decode(unknown.into()).is_err());
        let mut overlong = frame.encode().to_vec();
        overlong[10..14].copy_from_slice(&1000u32.to_be_bytes());
        assert!(Frame::decode(overlong.into()).is_err());
        assert!(Frame::decode(Bytes::from_static(b"short")).is_err());
    }

    #[test]
    fn a_head_with_a_field_this_node_does_not_know_is_read() {
        #[derive(Serialize)]
        struct Newer {
            answer: &'static str,
            added_later: u32,
        }
        let head = pack(&Newer {
            answer: "not_owner",
            added_later: 7,
        });
        assert!(matches!(
            unpack::<SectionAnswer>(&head).unwrap(),
            SectionAnswer::NotOwner
        ));
    }

    fn enroll() -> SectionCall {
        SectionCall {
            command: registrar_actors::Command::Enroll {
                student: registrar_actors::StudentId::new_v4(),
                request: registrar_actors::RequestId::new_v4(),
                seat_only: false,
                attrs: vec![],
                permits: vec![],
                capacity_permit: None,
            },
            home: Some(super::super::hop::HomeClaim {
                node: "node-2".into(),
                shard: 7,
                epoch: 3,
            }),
            deadline_ms: Some(1500),
        }
    }

    #[test]
    fn a_command_and_its_claim_survive_messagepack() {
        let request = SectionRequest {
            section: SectionId::new_v4(),
            call: enroll(),
        };
        let back: SectionRequest = unpack(&pack(&request)).unwrap();
        assert_eq!(back.section, request.section);
        assert_eq!(back.call.command, request.call.command);
        assert_eq!(back.call.home, request.call.home);
        assert_eq!(back.call.deadline_ms, Some(1500));
    }

    /// A stand-in peer's calls: each section call answers with its section id, after
    /// `delay`; a forward is echoed.
    #[derive(Default)]
    struct Echo {
        ran: AtomicUsize,
        delay: Duration,
    }

    impl Handler for Echo {
        async fn section_call(&self, request: SectionRequest) -> SectionAnswer {
            self.ran.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            SectionAnswer::Unavailable {
                message: request.section.to_string(),
            }
        }

        async fn forward(&self, head: Bytes, body: Bytes) -> (Bytes, Bytes) {
            self.ran.fetch_add(1, Ordering::SeqCst);
            (head, body)
        }
    }

    /// The client's upgrade request read off `stream` (the wire's bytes stay buffered).
    async fn read_upgrade(stream: TcpStream) -> BufReader<TcpStream> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        reader
    }

    /// A section call of a new section through `client`, waiting up to 5 s.
    async fn call_any(client: &WireClient, base: &str) -> Result<SectionAnswer, WireError> {
        (client.call_section(base, SectionId::new_v4(), &enroll(), Duration::from_secs(5))).await
    }

    /// A stand-in peer on a port of its own: it answers the upgrade as `open_wire` does,
    /// or 404 when `speaks` is false, then serves each connection with `handler`. Its
    /// base URL, and how many connections it accepted.
    async fn peer(
        handler: Arc<Echo>,
        sessions: Arc<Sessions>,
        speaks: bool,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (handler, sessions) = (handler.clone(), sessions.clone());
                tokio::spawn(async move {
                    let mut reader = read_upgrade(stream).await;
                    let answer: &[u8] = if speaks {
                        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: registrar-wire\r\n\
                          x-registrar-wire: 1\r\n\r\n"
                    } else {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
                    };
                    if reader.get_mut().write_all(answer).await.is_ok() && speaks {
                        serve(reader, handler, sessions).await;
                    }
                });
            }
        });
        (base, accepted)
    }

    #[tokio::test]
    async fn many_calls_share_the_connections_and_each_gets_its_own_answer() {
        let echo = Arc::new(Echo {
            delay: Duration::from_millis(5),
            ..Echo::default()
        });
        let (base, accepted) = peer(echo.clone(), Arc::default(), true).await;
        let client = WireClient::new("key".into());
        let sections: Vec<SectionId> = (0..200).map(|_| SectionId::new_v4()).collect();
        let call = enroll();
        let answers =
            futures_util::future::join_all(sections.iter().map(|section| {
                client.call_section(&base, *section, &call, Duration::from_secs(5))
            }))
            .await;
        for (section, answer) in sections.iter().zip(answers) {
            match answer {
                Ok(SectionAnswer::Unavailable { message }) => {
                    assert_eq!(message, section.to_string());
                }
                other => panic!("{other:?}"),
            }
        }
        let (head, body) = client
            .forward(
                &base,
                Bytes::from_static(b"h"),
                Bytes::from_static(b"b"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!((&head[..], &body[..]), (&b"h"[..], &b"b"[..]));
        assert_eq!(echo.ran.load(Ordering::SeqCst), 201);
        assert!(
            accepted.load(Ordering::SeqCst) <= CONNECTIONS,
            "one connection per call"
        );
    }

    #[tokio::test]
    async fn a_closing_peer_answers_the_calls_it_started_and_runs_no_new_one() {
        let echo = Arc::new(Echo {
            delay: Duration::from_millis(300),
            ..Echo::default()
        });
        let sessions = Arc::new(Sessions::default());
        let (base, _) = peer(echo.clone(), sessions.clone(), true).await;
        let client = Arc::new(WireClient::new("key".into()));
        let section = SectionId::new_v4();
        let started = {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                client
                    .call_section(&base, section, &enroll(), Duration::from_secs(5))
                    .await
            })
        };
        while echo.ran.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let closing = {
            let sessions = sessions.clone();
            tokio::spawn(async move { sessions.close(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..CONNECTIONS + 1 {
            let refused = call_any(&client, &base).await;
            assert!(
                matches!(refused, Err(WireError::Peer(PeerError::Unreached(_)))),
                "{refused:?}"
            );
        }
        match started.await.unwrap() {
            Ok(SectionAnswer::Unavailable { message }) => assert_eq!(message, section.to_string()),
            other => panic!("the call under way was not answered: {other:?}"),
        }
        closing.await.unwrap();
        assert_eq!(echo.ran.load(Ordering::SeqCst), 1, "a refused call ran");
    }

    #[tokio::test]
    async fn a_peer_without_the_wire_is_left_to_http_for_a_while() {
        let (base, accepted) = peer(Arc::default(), Arc::default(), false).await;
        let client = WireClient::new("key".into());
        for _ in 0..3 {
            let answer = call_any(&client, &base).await;
            assert!(matches!(answer, Err(WireError::Unsupported)), "{answer:?}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "asked again at once");
    }

    #[tokio::test]
    async fn a_connection_lost_with_a_call_on_it_leaves_the_call_in_doubt() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut reader = read_upgrade(stream).await;
            let accepted = b"HTTP/1.1 101 Switching Protocols\r\nx-registrar-wire: 1\r\n\r\n";
            reader.get_mut().write_all(accepted).await.unwrap();
            // Read the call's frame (past any ping), then hang up without answering.
            let mut frames = Framed::new(reader, codec());
            while let Some(Ok(frame)) = frames.next().await {
                if frame.get(1) == Some(&(Kind::SectionCall as u8)) {
                    break;
                }
            }
        });
        let client = WireClient::new("key".into());
        let answer = call_any(&client, &base).await;
        // In doubt because the connection was lost, not because the call timed out (which
        // is in doubt too, and would pass without the hang-up).
        assert!(
            matches!(&answer, Err(WireError::Peer(PeerError::Transport(m))) if m.contains("lost")),
            "{answer:?}"
        );
    }

    #[test]
    fn only_plain_http_peers_are_reached_over_the_wire() {
        assert_eq!(
            WireClient::address("http://10.0.0.1:8080"),
            Some("10.0.0.1:8080")
        );
        assert_eq!(
            WireClient::address("http://node-2:8080/"),
            Some("node-2:8080")
        );
        assert_eq!(WireClient::address("https://node-2"), None);
    }
}
