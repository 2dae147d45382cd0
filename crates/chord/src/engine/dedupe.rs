//! Writes run once at their owner, however often they are sent. An operation retries when it
//! hears no answer (a relay whose forward failed after the owner stored the write, a
//! connection closed under the answer), so the same write may reach its owner twice; run
//! twice, a `set` would announce its change twice and a `delete` would answer "absent" the
//! second time (`pop()` raising `KeyError` for a key it deleted). Each user write carries a
//! random nonce; the owner remembers the nonces it ran, and their answers, for a while: a
//! repeat gets the first answer, and one that arrives while the first is still running is told
//! to come back later.

use super::time::Millis;
use crate::id::Id;
use crate::protocol::Response;
use std::collections::{HashMap, VecDeque};

/// Writes remembered at most, and for how long: past an operation's deadline (15 s), after
/// which nobody retries.
const REMEMBERED: usize = 16_384;
const REMEMBER_MS: Millis = 30_000;

#[derive(Debug)]
enum State {
    Running,
    Done(Response),
}

#[derive(Debug)]
struct Entry {
    /// The key's position: a nonce reused for another key is not the same write.
    position: Id,
    state: State,
}

/// What to do with a write that arrived with a nonce.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Not seen before: run it (it is now marked running).
    New,
    /// The same write is running: answer "later".
    Running,
    /// Already run: answer this again.
    Done(Response),
}

#[derive(Debug, Default)]
pub struct RecentWrites {
    entries: HashMap<u64, Entry>,
    order: VecDeque<(u64, Millis)>,
}

impl RecentWrites {
    /// A write with `nonce` to `key` arrived (0: the sender keeps no nonces; always new).
    pub fn begin(&mut self, nonce: u64, key: &[u8], now: Millis) -> Seen {
        if nonce == 0 {
            return Seen::New;
        }
        self.expire(now);
        let position = Id::of_key(key);
        if let Some(entry) = self.entries.get(&nonce).filter(|e| e.position == position) {
            return match &entry.state {
                State::Running => Seen::Running,
                State::Done(answer) => Seen::Done(answer.clone()),
            };
        }
        if self.order.len() >= REMEMBERED {
            if let Some((oldest, _)) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(nonce, Entry { position, state: State::Running });
        self.order.push_back((nonce, now));
        Seen::New
    }

    /// The write with `nonce` ended: with its answer once it was stored (`Some`), or without
    /// storing anything (`None`: a retry runs it again).
    pub fn finish(&mut self, nonce: u64, answer: Option<Response>) {
        if nonce == 0 {
            return;
        }
        match answer {
            Some(answer) => {
                if let Some(entry) = self.entries.get_mut(&nonce) {
                    entry.state = State::Done(answer);
                }
            }
            None => {
                self.entries.remove(&nonce);
            }
        }
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&(nonce, at)) = self.order.front() {
            if now < at + REMEMBER_MS && self.order.len() <= REMEMBERED {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;

    fn written() -> Response {
        Response::Written { previous: Some(serde_bytes::ByteBuf::from(b"old".to_vec())), version: Version::default(), arc: (Id(1), Id(2)) }
    }

    #[test]
    fn a_repeated_write_gets_the_first_answer_and_one_still_running_is_told_later() {
        let mut recent = RecentWrites::default();
        assert_eq!(recent.begin(7, b"k", 0), Seen::New);
        assert_eq!(recent.begin(7, b"k", 5), Seen::Running);
        recent.finish(7, Some(written()));
        assert_eq!(recent.begin(7, b"k", 10), Seen::Done(written()));
        assert_eq!(recent.begin(7, b"other key", 10), Seen::New, "a nonce reused for another key is another write");
        assert_eq!(recent.begin(0, b"k", 10), Seen::New, "no nonce: never deduplicated");
        assert_eq!(recent.begin(7, b"k", 10 + REMEMBER_MS + 1), Seen::New, "forgotten after a while");
    }

    #[test]
    fn a_write_that_stored_nothing_runs_again_and_memory_is_bounded() {
        let mut recent = RecentWrites::default();
        assert_eq!(recent.begin(9, b"k", 0), Seen::New);
        recent.finish(9, None);
        assert_eq!(recent.begin(9, b"k", 1), Seen::New);
        for nonce in 1..=(REMEMBERED as u64 + 100) {
            recent.begin(1_000_000 + nonce, b"k", 2);
        }
        assert!(recent.entries.len() <= REMEMBERED && recent.order.len() <= REMEMBERED);
    }
}
