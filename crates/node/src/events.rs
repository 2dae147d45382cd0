//! Events a node reports to its user, and the bounded queue they wait in until taken in
//! batches (one batch per wake-up keeps the cost of crossing into JavaScript low).

use chord::id::Id;
use chord::routing::NodeRef;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

pub use crate::config::MAX_QUEUED_EVENTS;

#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    pub id: Id,
    pub host: String,
    pub port: u16,
    /// We dialed it (true) or it dialed us.
    pub outbound: bool,
    /// It is a member of the Chord ring.
    pub member: bool,
}

/// A mesh message delivered to this node.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    /// The peer the message arrived from: its id is the one it proved in the handshake (with
    /// Noise), its address the one its Hello named. A whisper's author; for a broadcast, the
    /// neighbour that forwarded it (its author when they are directly connected).
    pub sender: NodeRef,
    /// Who the message says wrote it. A whisper's is its sender (a whisper naming another
    /// origin is dropped); a broadcast's is claimed by whoever wrote it and not checked: any
    /// node the broadcast passed through could have made it up.
    pub origin: NodeRef,
    pub time_ms: u64,
    pub packets: Vec<Vec<u8>>,
    pub broadcast: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connect(PeerInfo),
    Disconnect { peer: PeerInfo, reason: String },
    Message(Incoming),
    /// Something went wrong that no caller is waiting on (a peer sent garbage, a background
    /// repair failed). The node keeps running.
    Error { code: String, message: String },
    /// A key was set somewhere in the ring.
    Added(Vec<u8>),
    /// A key was deleted somewhere in the ring.
    Deleted(Vec<u8>),
}

pub(crate) struct EventQueue {
    queue: Mutex<Queue>,
    ready: Notify,
}

struct Queue {
    events: VecDeque<Event>,
    closed: bool,
    overflowed: bool,
}

impl EventQueue {
    pub(crate) fn new() -> EventQueue {
        EventQueue { queue: Mutex::new(Queue { events: VecDeque::new(), closed: false, overflowed: false }), ready: Notify::new() }
    }

    /// A panic elsewhere while the lock was held must not stop event delivery: take the queue
    /// anyway (it is only ever left whole).
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn push(&self, event: Event) {
        let mut queue = self.lock();
        if queue.closed {
            return;
        }
        if queue.events.len() >= MAX_QUEUED_EVENTS {
            if !queue.overflowed {
                queue.overflowed = true;
                queue.events.push_back(Event::Error {
                    code: "ERR_EVENTS_DROPPED".into(),
                    message: format!("more than {MAX_QUEUED_EVENTS} events were waiting; newer ones are dropped"),
                });
            }
            return;
        }
        queue.overflowed = false;
        queue.events.push_back(event);
        drop(queue);
        self.ready.notify_one();
    }

    /// Up to `max` events, waiting for at least one; `None` when closed and drained.
    pub(crate) async fn next_batch(&self, max: usize) -> Option<Vec<Event>> {
        loop {
            {
                let mut queue = self.lock();
                if !queue.events.is_empty() {
                    let take = queue.events.len().min(max.max(1));
                    return Some(queue.events.drain(..take).collect());
                }
                if queue.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// No more events will come; waiters wake up and drain what is left.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_is_bounded_and_says_when_it_drops() {
        let queue = EventQueue::new();
        for i in 0..MAX_QUEUED_EVENTS + 10 {
            queue.push(Event::Added(vec![i as u8]));
        }
        let mut taken = Vec::new();
        while taken.len() <= MAX_QUEUED_EVENTS {
            taken.extend(queue.next_batch(4096).await.unwrap());
        }
        assert_eq!(taken.len(), MAX_QUEUED_EVENTS + 1);
        assert!(matches!(&taken[MAX_QUEUED_EVENTS], Event::Error { code, .. } if code == "ERR_EVENTS_DROPPED"));
        queue.close();
        assert_eq!(queue.next_batch(10).await, None);
    }
}
