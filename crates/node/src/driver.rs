//! The driver: runs one node's [`Engine`] on tokio and executes what it decides, nothing more.
//!
//! Every input (a peer's request or answer, a user operation, the passing of time) is fed to
//! the engine under one std `Mutex` that is never held across an `.await` (as in mini-redis);
//! the actions it returns are drained under the same lock and executed after it is released:
//! frames go to the transport (dialing first when needed), notices to the event queue, results
//! to whoever waits for the operation. One timer task sleeps until the engine's next deadline.
//!
//! With a `dataDir`, a committer thread runs beside them ([`Driver::run_committer`]): it waits
//! for durability barriers (`Action::Persist`), writes everything the store staged so far as
//! one commit (group commit: every ticket asked before it completes with it), and feeds the
//! outcome back (`Engine::persisted`). No commit or fsync ever runs under the engine's lock.

use crate::clock::wall_millis;
use crate::disk::Disk;
use crate::events::{Event, EventQueue};
use crate::transport::{ConnId, Frame, Transport};
use chord::engine::{Action, Admission, Engine, Notice, Now, OpId, OpOutput, ReplyTo, ReqId, UserOp};
use chord::error::{Error, Result};
use chord::id::Id;
use chord::metrics::{MemberInfo, Metrics, MetricsSnapshot, TimedOp};
use chord::protocol::{self, Message, Request, Response};
use chord::routing::NodeRef;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
// tokio's clock, so tests can pause and advance time (`tokio::time::pause`).
use tokio::time::Instant;
use tokio::sync::{oneshot, Notify};

/// Whoever waits for a user operation.
pub(crate) type Completion = Box<dyn FnOnce(Result<OpOutput>) + Send>;

struct State {
    engine: Engine,
    ops: HashMap<OpId, Completion>,
    closed: bool,
    /// Why the engine stopped: it panicked (a bug) and was left half-way through a step, so
    /// it is never fed again; operations fail with this message.
    failed: Option<String>,
}

/// Work drained from the engine, done once its lock is released.
enum Work {
    Act(Action),
    Complete(Completion, Result<OpOutput>),
}

pub(crate) struct Driver {
    state: Mutex<State>,
    epoch: Instant,
    transport: Arc<Transport>,
    events: Arc<EventQueue>,
    next_op: AtomicU64,
    /// When the timer task plans to wake (ms since `epoch`).
    timer_at: AtomicU64,
    timer_wake: Notify,
    /// Inputs also come from threads outside tokio (the binding's synchronous `submit`), so
    /// dials are spawned on the runtime the node started on.
    runtime: tokio::runtime::Handle,
    /// Operation latencies and connections (relaxed atomics, no lock).
    pub metrics: Arc<Metrics>,
    /// The node's on-disk store (`dataDir`), committed by the committer thread.
    disk: Option<Arc<Disk>>,
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The committer waits this long for a durability barrier before it commits what other work
/// staged (anti-entropy, removals, members) anyway.
const COMMIT_IDLE: Duration = Duration::from_millis(200);
/// With `durability: 'os'`, the journal is flushed to the disk this often.
const OS_SYNC_EVERY: Duration = Duration::from_secs(1);
/// The members a node knows are staged for the disk this often (when they changed).
const REMEMBER_MEMBERS_EVERY: Duration = Duration::from_secs(2);

impl Driver {
    /// Must be called inside the tokio runtime the node runs on.
    pub fn new(engine: Engine, epoch: Instant, transport: Arc<Transport>, events: Arc<EventQueue>, disk: Option<Arc<Disk>>) -> Driver {
        let metrics = Arc::clone(&transport.metrics);
        Driver {
            disk,
            committer: Mutex::new(None),
            state: Mutex::new(State { engine, ops: HashMap::new(), closed: false, failed: None }),
            epoch,
            transport,
            events,
            next_op: AtomicU64::new(1),
            timer_at: AtomicU64::new(u64::MAX),
            timer_wake: Notify::new(),
            runtime: tokio::runtime::Handle::current(),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> Now {
        Now { mono: self.epoch.elapsed().as_millis() as u64, wall: wall_millis() }
    }

    /// Feed one input to the engine, then execute what it decided. A panic in the engine (a
    /// bug) stops the node: the engine may be half-way through a step, so it is never fed
    /// again; every waiting operation fails with `ERR_INTERNAL`, an `error` event says why, and
    /// the connections and the port close (peers see a crash and repair around it).
    fn call(self: &Arc<Self>, input: impl FnOnce(&mut Engine, Now)) {
        let mut stopped = None;
        let (work, wake) = {
            let mut state = self.lock();
            if state.failed.is_some() {
                return;
            }
            let now = self.now();
            let mut work = Vec::new();
            if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| input(&mut state.engine, now))) {
                let message = format!("the engine panicked ({}); the node stopped and closed its connections", panic_text(&payload));
                for (_, completion) in state.ops.drain() {
                    work.push(Work::Complete(completion, Err(Error::Internal(message.clone()))));
                }
                state.failed = Some(message.clone());
                state.closed = true;
                self.events.push(Event::Error { code: "ERR_INTERNAL".into(), message: message.clone() });
                stopped = Some(message);
            }
            // After a panic nothing the engine queued is executed: it may be half a decision.
            while let Some(action) = state.engine.poll_action().filter(|_| stopped.is_none()) {
                match action {
                    Action::Done { op, result } => {
                        if let Some(completion) = state.ops.remove(&op) {
                            work.push(Work::Complete(completion, result));
                        }
                    }
                    other => work.push(Work::Act(other)),
                }
            }
            let wake = if state.closed { None } else { state.engine.poll_timeout() };
            (work, wake)
        };
        if let Some(at) = wake {
            // Earliest wins, also against a concurrent call: only the one that lowered the
            // time wakes the timer task.
            if at < self.timer_at.fetch_min(at, Ordering::AcqRel) {
                self.timer_wake.notify_one();
            }
        }
        for item in work {
            match item {
                Work::Act(action) => self.execute(action),
                Work::Complete(completion, result) => completion(result),
            }
        }
        if let Some(reason) = stopped {
            self.transport.shut_down(&reason);
        }
    }

    /// Feed the engine nothing but the time: its next deadline is scheduled.
    pub fn wake(self: &Arc<Self>) {
        self.call(|_, _| {});
    }

    /// Why the node stopped on its own, if it did (its engine panicked).
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// Read the engine without feeding it anything.
    pub fn inspect<R>(&self, read: impl FnOnce(&Engine) -> R) -> R {
        read(&self.lock().engine)
    }

    /// A get the engine can answer without waiting (`Engine::get_now`), else `None`.
    pub fn get_now(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let started = Instant::now();
        let answer = {
            let mut state = self.lock();
            if state.failed.is_some() || state.closed {
                return None;
            }
            let now = self.now();
            state.engine.get_now(now, key)
        };
        // Counted like any get (the metrics' operations and latencies).
        if answer.is_some() {
            self.metrics.record_op(TimedOp::Get, started.elapsed().as_micros() as u64, None);
        }
        answer
    }

    /// Encode a message, refusing one over the frame limit: every bulk message is cut by bytes
    /// to fit, so this is a bug caught before the peer has to drop the connection.
    fn encode(&self, message: &Message) -> Option<Frame> {
        let frame = Frame::of(message);
        let (size, limit) = (frame.bytes.len() - protocol::LENGTH_PREFIX_BYTES, self.transport.identity.max_frame_bytes);
        if size <= limit {
            return Some(frame);
        }
        self.metrics.record_oversized_frame();
        self.events.push(Event::Error {
            code: "ERR_OVERSIZED_FRAME".into(),
            message: format!("refused to send a frame of {size} bytes over the {limit}-byte limit (a bug: please report it)"),
        });
        None
    }

    fn execute(self: &Arc<Self>, action: Action) {
        match action {
            Action::Request { to, id, body } => self.send_request(to, id, body),
            Action::Respond { to, body } => {
                let frame = self.encode(&Message::Response { id: to.id, body }).or_else(|| {
                    let refusal = Response::Error { code: "too-large".into(), message: "the answer would exceed the frame limit".into() };
                    self.encode(&Message::Response { id: to.id, body: refusal })
                });
                if let Some(frame) = frame {
                    self.transport.send_frame(to.conn, frame);
                }
            }
            Action::Send { to, message } => self.send_one_way(to, message),
            Action::ToClients { message } => {
                let clients = self.transport.client_conns();
                if !clients.is_empty() {
                    let frame = Frame::of(&message);
                    for conn in clients {
                        self.transport.send_frame(conn, frame.clone());
                    }
                }
            }
            Action::Notice(notice) => self.events.push(match notice {
                Notice::Added(key) => Event::Added(key),
                Notice::Deleted(key) => Event::Deleted(key),
                Notice::Error { code, message } => Event::Error { code, message },
            }),
            Action::Disconnect { peer, reason } => self.transport.drop_peer(peer, &reason),
            Action::Persist { ticket } => match &self.disk {
                Some(disk) => disk.request(ticket),
                None => self.call(|engine, now| engine.persisted(now, ticket, Ok(()))),
            },
            Action::Done { .. } => unreachable!("completions are drained under the lock"),
        }
    }

    fn send_request(self: &Arc<Self>, to: NodeRef, id: ReqId, body: Request) {
        let Some(frame) = self.encode(&Message::Request { id, body }) else {
            return self.call(|engine, now| engine.request_failed(now, id, Error::Internal("the request would exceed the frame limit".into())));
        };
        if let Some(conn) = self.transport.conn_to(to.id) {
            if !self.transport.send_frame(conn, frame) {
                self.call(|engine, now| engine.request_failed(now, id, Error::PeerGone(format!("{}:{}", to.host, to.port))));
            }
            return;
        }
        let driver = self.clone();
        self.runtime.spawn(async move {
            match driver.dial(&to).await {
                Ok(conn) if driver.transport.send_frame(conn, frame) => {}
                Ok(_) => driver.call(|engine, now| engine.request_failed(now, id, Error::PeerGone(format!("{}:{}", to.host, to.port)))),
                Err(error) => driver.call(|engine, now| engine.request_failed(now, id, error)),
            }
        });
    }

    fn send_one_way(self: &Arc<Self>, to: NodeRef, message: Message) {
        let Some(frame) = self.encode(&message) else { return };
        if let Some(conn) = self.transport.conn_to(to.id) {
            self.transport.send_frame(conn, frame);
            return;
        }
        let driver = self.clone();
        self.runtime.spawn(async move {
            if let Ok(conn) = driver.dial(&to).await {
                driver.transport.send_frame(conn, frame);
            }
        });
    }

    /// A connection to `node` (at the peer limit the transport asks the engine which
    /// connection gives way: `admit`).
    async fn dial(self: &Arc<Self>, node: &NodeRef) -> Result<ConnId> {
        self.transport.connection_to(node).await
    }

    /// Every slot is taken and `peer` knocks: the engine's connection policy decides.
    pub fn admit(&self, peer: Id) -> Admission {
        self.inspect(|engine| engine.admit(peer))
    }

    /// A connection to `peer` is up.
    pub fn connected(self: &Arc<Self>, peer: &NodeRef, member: bool) {
        self.call(|engine, now| engine.connected(now, peer, member));
    }

    /// Start a user operation; `done` runs once with its result. Dict operations are timed.
    pub fn start_op(self: &Arc<Self>, op: UserOp, done: Completion) {
        let timed = match &op {
            UserOp::Get(_) => Some(TimedOp::Get),
            UserOp::Set(..) => Some(TimedOp::Set),
            UserOp::Delete(_) => Some(TimedOp::Delete),
            _ => None,
        };
        let done: Completion = match timed {
            Some(kind) => {
                let (driver, started) = (self.clone(), std::time::Instant::now());
                Box::new(move |result: Result<OpOutput>| {
                    driver.metrics.record_op(kind, started.elapsed().as_micros() as u64, result.as_ref().err().map(Error::code));
                    done(result)
                })
            }
            None => done,
        };
        let id = self.next_op.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.lock();
            if state.closed {
                let error = state.failed.clone().map_or(Error::Closed, Error::Internal);
                drop(state);
                return done(Err(error));
            }
            state.ops.insert(id, done);
        }
        self.call(|engine, now| engine.start_op(now, id, op));
    }

    /// Run a user operation to its end.
    pub async fn run_op(self: &Arc<Self>, op: UserOp) -> Result<OpOutput> {
        let (tx, rx) = oneshot::channel();
        self.start_op(op, Box::new(move |result| {
            let _ = tx.send(result);
        }));
        rx.await.unwrap_or(Err(Error::Closed))
    }

    pub fn on_request(self: &Arc<Self>, conn: ConnId, peer: &NodeRef, id: u64, body: Request) {
        if body == Request::Info {
            // Diagnostics that include the driver's own measurements: answered here.
            let info = Box::new(self.member_info());
            self.transport.send_message(conn, &Message::Response { id, body: Response::Info(info) });
            return;
        }
        self.call(|engine, now| engine.handle_request(now, peer, ReplyTo { conn, id }, body));
    }

    pub fn on_response(self: &Arc<Self>, peer: Id, id: u64, body: Response) {
        self.call(|engine, now| engine.handle_response(now, peer, id, body));
    }

    pub fn watch(self: &Arc<Self>, prefixes: Vec<Vec<u8>>) {
        self.call(|engine, now| engine.watch(now, prefixes));
    }

    pub fn on_ring_message(self: &Arc<Self>, from: &NodeRef, message: Message) {
        self.call(|engine, now| engine.handle_message(now, from, message));
    }

    /// A connection to `peer` closed (`last`: no other remains; `lost`: it broke rather than
    /// being closed by one side).
    pub fn peer_gone(self: &Arc<Self>, peer: &NodeRef, reason: &str, last: bool, lost: bool) {
        let error = Error::PeerGone(format!("{}:{} ({reason})", peer.host, peer.port));
        match lost {
            true => self.call(|engine, now| engine.peer_gone(now, peer.id, error, last)),
            false => self.call(|engine, now| engine.peer_closed(now, peer.id, error, last)),
        }
    }

    /// What this node reports about itself: the engine's part, the connections, the metrics.
    pub fn member_info(&self) -> MemberInfo {
        let (mut info, figures) = self.inspect(|engine| (engine.member_info(), engine.ring_figures().clone()));
        info.connections = self.transport.len() as u32;
        info.metrics = self.metrics.snapshot(&figures);
        info
    }

    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        let figures = self.inspect(|engine| engine.ring_figures().clone());
        self.metrics.snapshot(&figures)
    }

    pub fn learn_member(self: &Arc<Self>, node: &NodeRef) {
        self.lock().engine.learn_member(node);
    }

    pub fn is_member(&self) -> bool {
        self.lock().engine.is_member()
    }

    /// Sleep until the engine's next deadline, feed it the time, repeat until shutdown.
    pub async fn run_timers(self: Arc<Self>) {
        let mut shutdown = self.transport.shutdown_signal();
        loop {
            let at = self.timer_at.load(Ordering::Relaxed);
            let sleep = match at {
                u64::MAX => Duration::from_secs(3600),
                // One more millisecond: `now` truncates, and waking early would only loop.
                at => Duration::from_millis(at.saturating_sub(self.now().mono) + 1),
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.timer_wake.notified() => continue,
                _ = tokio::time::sleep(sleep) => {}
            }
            self.timer_at.store(u64::MAX, Ordering::Relaxed);
            self.call(|engine, now| engine.handle_timeout(now));
        }
    }

    /// Start the committer thread of the node's on-disk store, if it has one.
    pub fn start_committer(self: &Arc<Self>) -> Result<()> {
        let Some(disk) = self.disk.clone() else { return Ok(()) };
        let driver = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("chordnet-commit".into())
            .spawn(move || Driver::run_committer(driver, disk))
            .map_err(|e| Error::io(e, "cannot start the store's committer thread"))?;
        *self.committer.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// The committer: take what the store staged, commit it as one batch, report the tickets
    /// it carried; flush the journal once a second in `os` mode; keep the members this node
    /// knows when they changed. After a failed commit (a full disk) the store refuses writes;
    /// once the file system has room again the store is reopened (fjall takes no write after a
    /// failed one) under the engine's lock, so no read sees it half-open, and the writes that
    /// waited are committed.
    fn run_committer(driver: std::sync::Weak<Driver>, disk: Arc<Disk>) {
        let mut last_sync = std::time::Instant::now();
        let mut last_members: Option<std::time::Instant> = None;
        let mut remembered: Vec<NodeRef> = Vec::new();
        loop {
            let batch = disk.take_batch(COMMIT_IDLE);
            if disk.needs_reopen() && disk.has_room() {
                if let Some(driver) = driver.upgrade() {
                    let reopened = driver.exclusive(|| disk.reopen());
                    if let Err(error) = reopened {
                        driver.events.push(Event::Error { code: error.code().into(), message: format!("reopening the store failed: {error}") });
                    }
                }
            }
            let result = if batch.is_empty() { Ok(()) } else { disk.commit(&batch) };
            if !batch.tickets.is_empty() {
                let Some(driver) = driver.upgrade() else { break };
                driver.call(|engine, now| {
                    for ticket in &batch.tickets {
                        engine.persisted(now, *ticket, result.clone());
                    }
                });
            }
            if disk.durability() == crate::config::Durability::Os && last_sync.elapsed() >= OS_SYNC_EVERY {
                let _ = disk.sync();
                last_sync = std::time::Instant::now();
            }
            if last_members.is_none_or(|at| at.elapsed() >= REMEMBER_MEMBERS_EVERY) && !batch.last {
                let Some(driver) = driver.upgrade() else { break };
                let members = driver.inspect(|engine| engine.members_to_remember());
                if members != remembered && !members.is_empty() && disk.remember_members(&members).is_ok() {
                    remembered = members;
                }
                last_members = Some(std::time::Instant::now());
            }
            if batch.last {
                break;
            }
        }
        disk.release();
    }

    /// Run `work` while no input reaches the engine (and so no read of the store runs).
    fn exclusive<R>(&self, work: impl FnOnce() -> R) -> R {
        let _state = self.lock();
        work()
    }

    /// Write what the store staged and release its folder (closing or destroying the node).
    pub async fn close_storage(&self) {
        let Some(disk) = &self.disk else { return };
        disk.close();
        let thread = self.committer.lock().unwrap_or_else(|p| p.into_inner()).take();
        match thread {
            Some(thread) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            None => disk.release(),
        }
    }

    /// Stop taking work; operations still waiting fail with `ERR_SOCKET_CLOSED`.
    pub fn close(&self) {
        let waiting: Vec<Completion> = {
            let mut state = self.lock();
            state.closed = true;
            state.ops.drain().map(|(_, c)| c).collect()
        };
        for completion in waiting {
            completion(Err(Error::Closed));
        }
    }
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use crate::config::{ChordConfig, Config};
    use crate::events::Event;
    use crate::Node;
    use chord::engine::UserOp;
    use chord::protocol::Request;
    use chord::{Id, NodeRef};
    use std::time::Duration;

    async fn member() -> Node {
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig { stabilize_interval: Duration::from_millis(50), ..ChordConfig::default() });
        Node::start(config).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_engine_stops_the_node_with_an_error_instead_of_running_on() {
        let (a, b) = (member().await, member().await);
        let (host, port) = a.addr();
        b.connect(&host, port).await.unwrap();
        a.set(b"k".to_vec(), b"v".to_vec()).await.unwrap();
        let driver = a.inner.driver.clone();
        // An operation waiting when the engine breaks (a request to a peer that never finishes
        // its handshake) fails with the reason, not never.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = NodeRef { id: Id(7), host: "127.0.0.1".into(), port: silent.local_addr().unwrap().port() };
        let (tx, waiting) = tokio::sync::oneshot::channel();
        driver.start_op(UserOp::Ask(peer, Request::Ping), Box::new(move |result| drop(tx.send(result))));
        driver.call(|_, _| panic!("a bug in a machine"));
        let failed = waiting.await.unwrap().unwrap_err();
        assert_eq!(failed.code(), "ERR_INTERNAL");
        assert!(failed.to_string().contains("a bug in a machine"), "{failed}");
        // The engine is never fed again: later operations fail at once with the same reason.
        let later = a.get(b"k".to_vec()).await.unwrap_err();
        assert!(later.to_string().contains("the engine panicked"), "{later}");
        // The user hears of it, and the peers see the node go.
        let mut heard = false;
        while let Ok(Some(events)) = tokio::time::timeout(Duration::from_secs(2), a.next_events(64)).await {
            heard |= events.iter().any(|e| matches!(e, Event::Error { code, message } if code == "ERR_INTERNAL" && message.contains("a bug in a machine")));
            if heard {
                break;
            }
        }
        assert!(heard, "an ERR_INTERNAL error event");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !b.peers().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(b.peers().is_empty(), "the stopped node closed its connections");
        assert!(a.is_closed());
        a.close().await;
        b.close().await;
    }
}
