//! Membership anti-entropy: the exchange that keeps every member's table of all members
//! (`members`) complete. Each maintenance round a member compares an 8-byte digest of its
//! table with a random routing neighbour it holds a connection to; only when they differ do
//! they swap the bucket digests, then the entries of the buckets that differ.

use super::core::Core;
use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::members::{Members, MEMBER_BUCKETS};
use super::time::Millis;
use crate::id::Id;
use crate::protocol::{MemberEntry, Request, Response};
use crate::routing::NodeRef;
use rand::Rng;

/// Bytes of member entries one message carries at most (about 3,000 entries); a table that
/// differs by more converges over a few rounds.
const MEMBERS_BUDGET_BYTES: usize = 256 << 10;
/// Entries of one message merged at most (the rest are ignored): a frame cannot make a node
/// loop over millions of entries.
pub const MAX_MEMBER_ENTRIES: usize = 4096;

fn wire_size(entry: &MemberEntry) -> usize {
    48 + entry.node.host.len()
}

/// Entries of `table` in `buckets`, cut at [`MEMBERS_BUDGET_BYTES`].
fn entries_for(table: &Members, buckets: &[u16]) -> Vec<MemberEntry> {
    let mut bytes = 0;
    table
        .entries_in(buckets, MAX_MEMBER_ENTRIES)
        .into_iter()
        .take_while(|entry| {
            bytes += wire_size(entry);
            bytes <= MEMBERS_BUDGET_BYTES
        })
        .collect()
}

/// Keep our own entry in the table (we are a member): alive at our incarnation, a newer one
/// if someone recorded our death at it (a false suspicion, refuted).
pub fn assert_self(core: &mut Core, now: Millis, wall: u64) {
    if core.incarnation == 0 {
        core.incarnation = wall.max(1);
    }
    core.incarnation = core.members.refute(core.me.id, core.incarnation);
    let entry = MemberEntry { node: core.me.clone(), incarnation: core.incarnation, alive: true };
    core.members.merge(entry, now);
}

/// Merge entries a member sent us. Our own entry is ours to state: a rumour of our death is
/// refuted by a newer incarnation. (Addresses are checked where they are dialled: the
/// transport refuses one this node may not dial, and the entry is then recorded dead.)
fn absorb(core: &mut Core, entries: Vec<MemberEntry>, now: Millis, wall: u64) {
    let me = core.me.clone();
    for entry in entries.into_iter().take(MAX_MEMBER_ENTRIES) {
        if entry.node.id == me.id {
            if !entry.alive && entry.incarnation >= core.incarnation {
                core.incarnation = entry.incarnation + 1;
                assert_self(core, now, wall);
            }
            continue;
        }
        core.members.merge(entry, now);
    }
}

/// Does `sender` gossip with us? Only a ring member we know: anyone else could fill the table
/// with made-up members that operations would then be sent to.
fn trusted(core: &Core, sender: Option<&NodeRef>) -> bool {
    sender.is_some_and(|s| core.knows_member(s.id) || core.members.contains(s.id))
}

fn refusal() -> Response {
    Response::Error { code: "not-known".into(), message: "membership gossip is between ring members that know each other".into() }
}

/// Answer `Members { digest }`.
pub fn serve_digest(core: &Core, sender: Option<&NodeRef>, digest: u64) -> Response {
    if !trusted(core, sender) {
        return refusal();
    }
    // A saturated table (a ring too large for one hop) answers as if equal: nothing to swap.
    if core.members.digest() == digest || core.members.saturated() {
        return Response::MemberDigests(Vec::new());
    }
    Response::MemberDigests(core.members.digests())
}

/// Answer `MemberEntries`: take theirs, give ours of the same buckets.
pub fn serve_entries(cx: &mut Cx<'_>, sender: Option<&NodeRef>, buckets: Vec<u16>, entries: Vec<MemberEntry>) -> Response {
    if !trusted(cx.core, sender) {
        return refusal();
    }
    let buckets: Vec<u16> = buckets.into_iter().filter(|b| (*b as usize) < MEMBER_BUCKETS).take(MEMBER_BUCKETS).collect();
    let ours = entries_for(&cx.core.members, &buckets);
    absorb(cx.core, entries, cx.now.mono, cx.now.wall);
    Response::MemberEntries(ours)
}

/// One round of membership anti-entropy with a random routing neighbour we hold a connection
/// to: compare whole-table digests (8 bytes); only if they differ, the 64 bucket digests; then
/// swap the entries of the buckets that differ.
#[derive(Default)]
pub struct MemberSync {
    asked: Option<(ReqId, NodeRef)>,
}

fn finished() -> Step {
    Step::Done(Outcome::Unit(Ok(())))
}

impl Machine for MemberSync {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let wall = cx.now.wall;
                assert_self(cx.core, cx.now.mono, wall);
                if cx.core.members.saturated() {
                    return finished();
                }
                let routing = cx.core.routing_set();
                let open: Vec<Id> = routing.into_iter().filter(|id| cx.core.links.is_open(*id)).collect();
                if open.is_empty() {
                    return finished();
                }
                let pick = open[cx.core.rng.gen_range(0..open.len())];
                let Some(peer) = cx.core.ring.as_ref().and_then(|r| r.known_nodes().into_iter().find(|n| n.id == pick)) else { return finished() };
                let digest = cx.core.members.digest();
                self.asked = Some((cx.request(&peer, Request::Members { digest }), peer));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, peer) = self.asked.take().expect("checked");
                match reply {
                    Ok(Response::MemberDigests(theirs)) if theirs.len() == MEMBER_BUCKETS => {
                        let ours = cx.core.members.digests();
                        let buckets: Vec<u16> = ours.iter().zip(&theirs).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i as u16).collect();
                        if buckets.is_empty() {
                            return finished();
                        }
                        let entries = entries_for(&cx.core.members, &buckets);
                        self.asked = Some((cx.request(&peer, Request::MemberEntries { buckets, entries }), peer));
                        Step::Pending
                    }
                    Ok(Response::MemberEntries(theirs)) => {
                        let (now, wall) = (cx.now.mono, cx.now.wall);
                        absorb(cx.core, theirs, now, wall);
                        finished()
                    }
                    _ => finished(),
                }
            }
            _ => Step::Pending,
        }
    }
}

