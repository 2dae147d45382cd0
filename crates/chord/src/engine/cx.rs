//! What every state machine of the engine is made of: time passed in from outside ([`Now`]),
//! the [`Machine`] trait (an input in, a step out), the [`Action`]s the engine hands to its
//! driver, and [`Cx`], a machine's window on the node's state and on the outside world.
//!
//! The shape is quinn-proto's and libp2p kad's: nothing here reads a clock or touches a
//! socket. A machine asks for a request to be sent ([`Cx::request`]); the engine gives it an
//! id, queues an [`Action::Request`] for the driver and starts the request's deadline; the
//! answer (or the timeout, or the peer's disconnection) comes back to the same machine as
//! [`Input::Reply`].

use super::core::Core;
use crate::error::Error;
use crate::protocol::{Message, Request, Response};
use crate::id::Id;
use crate::routing::NodeRef;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

pub use super::time::{Millis, Now};

pub type TaskId = u64;
pub type ReqId = u64;
/// A durability barrier's id (see [`Action::Persist`]).
pub type Ticket = u64;
/// A user operation's id, chosen by the driver.
pub type OpId = u64;

/// Where an answer to a received request goes: the driver's connection and the request's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplyTo {
    pub conn: u64,
    pub id: u64,
}

/// Something the user should hear about that no caller waits for.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A key was set somewhere in the ring.
    Added(Vec<u8>),
    /// A key was deleted somewhere in the ring.
    Deleted(Vec<u8>),
    /// A background problem (a write stored on fewer replicas than asked, a failed join); the
    /// node keeps running.
    Error { code: String, message: String },
}

/// What a user operation returns.
#[derive(Clone, Debug, PartialEq)]
pub enum OpOutput {
    /// `get`: the value, `None` when absent.
    Value(Option<Vec<u8>>),
    /// `set` / `delete`: the live value replaced (`None` when absent) and the version the owner
    /// gave the write (the zero version when a delete found nothing to delete).
    Written { previous: Option<Vec<u8>>, version: crate::version::Version },
    Unit,
    Lookup(LookupInfo),
    Page(ScanPage),
    /// The answer to a diagnostic request asked with `UserOp::Ask`.
    Answer(Response),
}

/// Where a key lives and how far the lookup went.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupInfo {
    pub owner: NodeRef,
    /// Remote nodes asked during a greedy finger-table lookup (no cache).
    pub hops: u32,
}

/// One page of a ring walk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanPage {
    pub items: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Pass back to get the next page; `None` once the walk is complete.
    pub cursor: Option<Vec<u8>>,
}

/// What the engine asks its driver to do.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send a request; report its answer with `handle_response` or its failure with
    /// `request_failed` (the engine times it out by itself).
    Request { to: NodeRef, id: ReqId, body: Request },
    /// Answer a request received with `handle_request`.
    Respond { to: ReplyTo, body: Response },
    /// A one-way message to a node, dialing it if needed (ring events).
    Send { to: NodeRef, message: Message },
    /// A one-way message to every connected client (non-member) peer.
    ToClients { message: Message },
    Notice(Notice),
    /// A user operation finished.
    Done { op: OpId, result: Result<OpOutput, Error> },
    /// Close the connections to a peer the engine suspects has failed (a later request dials
    /// afresh).
    Disconnect { peer: Id, reason: String },
    /// Make everything the store has staged so far durable (a node with a `dataDir`), then
    /// report it with `persisted(ticket)`. Tickets asked before one commit starts may complete
    /// together (group commit). Never asked of a store that keeps its values in memory.
    Persist { ticket: Ticket },
}

/// What a machine is woken with.
#[derive(Debug)]
pub enum Input {
    Start,
    /// The answer to one of its requests, or why none will come.
    Reply(ReqId, Result<Response, Error>),
    /// A time it asked for with [`Cx::wake_at`] has come (machines ignore early or stale ones).
    Timer,
    /// A machine it spawned finished.
    Child(TaskId, Outcome),
    /// What it staged before asking for `Ticket` is durable, or could not be made so.
    Persisted(Ticket, Result<(), Error>),
}

/// What a finished machine produced.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A lookup: the owner and the remote hops it took.
    Owner(Result<(NodeRef, u32), Error>),
    Unit(Result<(), Error>),
    /// The answer to a request served by a machine.
    Response(Response),
    /// A user operation's result.
    Op(Result<OpOutput, Error>),
}

/// How a request is answered: now, or by a machine whose outcome becomes the response.
pub enum Served {
    Now(Response),
    Later(Box<dyn Machine>),
}

pub enum Step {
    Pending,
    Done(Outcome),
}

/// A protocol step written as a state machine: the engine feeds it inputs one at a time.
pub trait Machine: Send {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step;
}

/// A request waiting for its answer.
#[derive(Debug)]
pub struct Outstanding {
    pub task: TaskId,
    pub to: NodeRef,
    pub sent_at: Millis,
    /// When its peer is probed if it has said nothing since `sent_at`.
    pub overdue_at: Millis,
    /// Its peer has been probed while it waited (once is enough: it answered, so it lives).
    pub probed: bool,
    pub deadline: Millis,
}

/// The engine's bookkeeping of what is in flight: requests with their deadlines, timers,
/// machines spawned during a step, and actions for the driver.
#[derive(Default)]
pub struct Io {
    next_id: u64,
    pub requests: HashMap<ReqId, Outstanding>,
    /// Request deadlines, earliest first; entries of answered requests are skipped lazily.
    pub deadlines: BinaryHeap<Reverse<(Millis, ReqId)>>,
    /// When each request becomes overdue (half the failure timeout): if its peer has said
    /// nothing since it was sent, the peer is probed.
    pub overdue: BinaryHeap<Reverse<(Millis, ReqId)>>,
    /// Requests failed during a step (their peer was suspected), for the engine to deliver.
    pub failures: Vec<(TaskId, ReqId, Error)>,
    pub timers: BinaryHeap<Reverse<(Millis, TaskId)>>,
    /// Durability barriers asked for and not reported yet, with the task that waits.
    pub persists: HashMap<Ticket, TaskId>,
    pub spawned: Vec<(TaskId, TaskId, Box<dyn Machine>)>,
    pub actions: VecDeque<Action>,
    /// What waits on a membership check already under way, by node (see `verify`).
    pub verified_then: HashMap<Id, Vec<Then>>,
}

/// What to do once a node answered as a member (see `verify`).
pub type Then = Box<dyn FnOnce(&mut Cx<'_>, &NodeRef) + Send>;

impl Io {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Drop deadline entries of answered requests from the top of the heap, and rebuild the
    /// heap when stale entries outnumber live ones, so it stays as small as what is in flight.
    pub fn prune_deadlines(&mut self) {
        while let Some(Reverse((_, id))) = self.deadlines.peek() {
            if self.requests.contains_key(id) {
                break;
            }
            self.deadlines.pop();
        }
        if self.deadlines.len() > 2 * self.requests.len() + 64 {
            self.deadlines = self.requests.iter().map(|(id, r)| Reverse((r.deadline, *id))).collect();
        }
        while let Some(Reverse((_, id))) = self.overdue.peek() {
            if self.requests.contains_key(id) {
                break;
            }
            self.overdue.pop();
        }
        if self.overdue.len() > 2 * self.requests.len() + 64 {
            self.overdue = self.requests.iter().map(|(id, r)| Reverse((r.overdue_at, *id))).collect();
        }
    }

    /// Fail every request in flight to `peer` with `error`.
    pub fn fail_requests_to(&mut self, peer: Id, error: &Error) {
        let mut failed: Vec<ReqId> = self.requests.iter().filter(|(_, r)| r.to.id == peer).map(|(id, _)| *id).collect();
        // In the order they were sent, so a run replays exactly (the map's order is random).
        failed.sort_unstable();
        for id in failed {
            let outstanding = self.requests.remove(&id).expect("listed");
            self.failures.push((outstanding.task, id, error.clone()));
        }
    }
}

/// A machine's view of the world during one step.
pub struct Cx<'a> {
    pub core: &'a mut Core,
    pub now: Now,
    task: TaskId,
    io: &'a mut Io,
}

impl<'a> Cx<'a> {
    pub fn new(core: &'a mut Core, io: &'a mut Io, now: Now, task: TaskId) -> Cx<'a> {
        Cx { core, now, task, io }
    }

    /// Send `body` to `to` within the node's request timeout; the answer comes back as
    /// [`Input::Reply`] with the returned id.
    pub fn request(&mut self, to: &NodeRef, body: Request) -> ReqId {
        let timeout = self.core.request_timeout;
        self.request_within(to, body, timeout)
    }

    pub fn request_within(&mut self, to: &NodeRef, body: Request, timeout: Millis) -> ReqId {
        let id = self.io.next_id();
        let (sent_at, deadline) = (self.now.mono, self.now.mono + timeout);
        let overdue_at = sent_at + self.core.failure_timeout / 2;
        self.io.requests.insert(id, Outstanding { task: self.task, to: to.clone(), sent_at, overdue_at, probed: false, deadline });
        self.core.links.used(to.id, sent_at);
        self.io.deadlines.push(Reverse((deadline, id)));
        self.io.overdue.push(Reverse((overdue_at, id)));
        self.io.actions.push_back(Action::Request { to: to.clone(), id, body });
        id
    }

    /// Fail every request in flight to `peer` (it is suspected); their machines hear of it.
    pub fn fail_requests_to(&mut self, peer: Id, error: &Error) {
        self.io.fail_requests_to(peer, error);
    }

    pub fn disconnect(&mut self, peer: Id, reason: String) {
        self.io.actions.push_back(Action::Disconnect { peer, reason });
    }

    /// Be woken with [`Input::Timer`] at `at` (or soon after).
    pub fn wake_at(&mut self, at: Millis) {
        self.io.timers.push(Reverse((at, self.task)));
    }

    /// Start a child machine; its outcome comes back as [`Input::Child`] with the returned id.
    pub fn spawn(&mut self, machine: impl Machine + 'static) -> TaskId {
        let id = self.io.next_id();
        self.io.spawned.push((id, self.task, Box::new(machine)));
        id
    }

    /// Ask for what the store staged so far to be made durable: the answer comes back as
    /// [`Input::Persisted`] with the returned ticket. `None` when the store keeps its values in
    /// memory: there is nothing to wait for.
    pub fn persist(&mut self) -> Option<Ticket> {
        if !self.core.store.is_durable() {
            return None;
        }
        let ticket = self.io.next_id();
        self.io.persists.insert(ticket, self.task);
        self.io.actions.push_back(Action::Persist { ticket });
        Some(ticket)
    }

    pub fn send(&mut self, to: NodeRef, message: Message) {
        self.io.actions.push_back(Action::Send { to, message });
    }

    pub fn to_clients(&mut self, message: Message) {
        self.io.actions.push_back(Action::ToClients { message });
    }

    /// Continuations waiting on membership checks under way, by node (see `verify`).
    pub fn verified_then(&mut self) -> &mut HashMap<Id, Vec<Then>> {
        &mut self.io.verified_then
    }

    pub fn notice(&mut self, notice: Notice) {
        self.io.actions.push_back(Action::Notice(notice));
    }
}
