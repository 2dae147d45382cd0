//! What this node holds of its own arc `(predecessor, me]`: the one owner of that bookkeeping.
//! Every change of it goes through a method here named for the event that causes it (a
//! predecessor that moved, rings merging, a sync that finished), so the invariants live in one
//! place rather than in each machine that notices the event:
//!
//! - **Synced part.** We hold everything of `(synced_from, me]`: pulled when we joined, or
//!   synced with our replicas since. When our predecessor moves back past `synced_from` (it
//!   failed or left) the arc grows, and until a sync pulls the new part from the replicas we
//!   would answer "absent" for keys we do not have yet: reads and deletes of that part wait
//!   ([`ArcState::unsynced`]).
//! - **Unsettled.** For [`READ_AROUND_MS`] after the arc grew or we heard of rings merging
//!   around us, copies of our arc may sit on nodes other than our replicas, so an owner's
//!   misses are checked with its successors (see `read`).
//! - **Sync wanted.** Anti-entropy should run at the next maintenance round, not only on its
//!   period: the arc, the successors or a neighbour changed.
//! - **Inherited leases.** Once a sync ends with more of the arc held than before, the part
//!   came from another owner, which may have granted read leases on its keys (`lease`): writes
//!   to the arc wait until [`LEASE_MS`] after that sync, when every such lease has run out.

use super::lease::LEASE_MS;
use super::time::Millis;
use crate::id::Id;

/// How long after hearing of a merge (or its arc growing) an owner's misses are checked with
/// its successors: longer than the merges and data convergence measured after a heal (2–10 s).
pub const READ_AROUND_MS: Millis = 15_000;

#[derive(Debug, Default)]
pub struct ArcState {
    /// We hold all of `(synced_from, me]`; `None`: nothing synced yet.
    synced_from: Option<Id>,
    /// When the arc last grew or rings merged around us.
    unsettled_since: Option<Millis>,
    sync_wanted: bool,
    /// Part of the arc came from another owner (a predecessor that went, a merge, a join)
    /// and is not synced yet: the sync that ends starts the lease wait.
    inheriting: bool,
    /// Writes to the arc wait until then: leases a previous owner granted may still run.
    inherited_leases_until: Millis,
}

impl ArcState {
    /// Is `position`, inside our arc `(predecessor, me]`, in the part we have not synced yet?
    /// Outside our arc (or with no predecessor) nothing is "unsynced": it is not ours to answer.
    pub fn unsynced(&self, position: Id, predecessor: Option<Id>, me: Id) -> bool {
        let Some(predecessor) = predecessor else { return false };
        position.in_half_open(predecessor, me) && !self.synced_from.is_some_and(|from| position.in_half_open(from, me))
    }

    /// Did our arc grow, or rings merge around us, within [`READ_AROUND_MS`] of `now`?
    pub fn unsettled(&self, now: Millis) -> bool {
        self.unsettled_since.is_some_and(|since| now < since + READ_AROUND_MS)
    }

    /// Our predecessor became `predecessor` (a Notify, a neighbour leaving). An arc that shrank
    /// inside what we hold (or any arc, when we held everything: the first node of a ring) is
    /// all synced; one that grew holds a new part to sync, whose copies may sit elsewhere
    /// meanwhile. Returns whether part of the arc now waits for a sync (which should then run
    /// soon).
    pub fn predecessor_changed(&mut self, predecessor: Id, me: Id, held_everything: bool, now: Millis) -> bool {
        self.sync_wanted = true;
        let inside = self.synced_from.is_some_and(|from| predecessor == from || predecessor.in_half_open(from, me));
        if held_everything || inside {
            self.synced_from = Some(predecessor);
            false
        } else {
            self.unsettled_since = Some(now);
            self.inheriting = true;
            true
        }
    }

    /// Rings are merging around us (`Candidates`): a node of the other ring may become our
    /// predecessor, and our arc then holds keys written over there that we have never seen.
    /// Until it is synced with our (new) replicas, its reads and deletes wait.
    pub fn merging(&mut self, now: Millis) {
        self.synced_from = None;
        self.inheriting = true;
        self.sync_wanted = true;
        self.unsettled_since = Some(now);
    }

    /// We joined (or rejoined after a restart). What we pulled from our successor before it
    /// gave the arc up is not the whole arc: it took writes until it heard of us. So nothing
    /// counts as synced until a sync that starts once we know our predecessor (which comes
    /// after the successor accepted us): until then our arc's reads and writes wait.
    pub fn joined(&mut self) {
        self.synced_from = None;
        self.inheriting = true;
        self.sync_wanted = true;
    }

    /// A sync of our arc starting at `from` finished with at least one replica: we hold all
    /// of it. If part of it came from another owner, so may leases on its keys.
    pub fn synced(&mut self, from: Id, now: Millis) {
        if std::mem::take(&mut self.inheriting) {
            self.inherited_leases_until = now + LEASE_MS;
        }
        self.synced_from = Some(from);
    }

    /// Must writes to our arc wait for leases a previous owner may have granted?
    pub fn inherits_leases(&self, now: Millis) -> bool {
        now < self.inherited_leases_until
    }

    /// A settled ring installed by hand (simulators, tests): we hold all of `(predecessor, me]`.
    pub fn settled(&mut self, predecessor: Option<Id>) {
        self.synced_from = predecessor;
    }

    /// Run anti-entropy at the next maintenance round.
    pub fn want_sync(&mut self) {
        self.sync_wanted = true;
    }

    /// Whether anti-entropy was asked for since the last call.
    pub fn take_sync_wanted(&mut self) -> bool {
        std::mem::take(&mut self.sync_wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Id = Id(1000);

    #[test]
    fn an_arc_that_shrinks_stays_synced_and_one_that_grows_waits() {
        let mut arc = ArcState::default();
        arc.synced(Id(500), 0);
        assert!(!arc.unsynced(Id(600), Some(Id(500)), ME));
        // A closer predecessor: the arc shrank inside what we hold.
        arc.predecessor_changed(Id(700), ME, false, 0);
        assert!(!arc.unsynced(Id(800), Some(Id(700)), ME));
        assert!(!arc.unsettled(0));
        // The predecessor failed: its predecessor at 300 is ours now, (300, 700] is new.
        assert!(arc.predecessor_changed(Id(300), ME, false, 10), "part of the arc waits");
        assert!(arc.unsynced(Id(400), Some(Id(300)), ME), "the new part waits for a sync");
        assert!(!arc.unsynced(Id(800), Some(Id(300)), ME), "the old part is still held");
        assert!(arc.unsettled(10 + READ_AROUND_MS - 1) && !arc.unsettled(10 + READ_AROUND_MS));
        assert!(arc.take_sync_wanted() && !arc.take_sync_wanted());
        arc.synced(Id(300), 20);
        assert!(arc.inherits_leases(20 + LEASE_MS - 1) && !arc.inherits_leases(20 + LEASE_MS), "writes wait out the previous owner's leases");
        assert!(!arc.unsynced(Id(400), Some(Id(300)), ME));
    }

    #[test]
    fn a_joiner_holds_nothing_synced_until_a_sync_after_it_knows_its_predecessor() {
        let mut arc = ArcState::default();
        arc.joined();
        assert!(arc.take_sync_wanted());
        // The predecessor notifies us: the whole arc (500, 1000] waits, pulled or not.
        assert!(arc.predecessor_changed(Id(500), ME, false, 0));
        assert!(arc.unsynced(Id(999), Some(Id(500)), ME));
        arc.synced(Id(500), 0);
        assert!(!arc.unsynced(Id(999), Some(Id(500)), ME));
    }

    #[test]
    fn a_merge_unsyncs_the_whole_arc() {
        let mut arc = ArcState::default();
        arc.settled(Some(Id(500)));
        arc.merging(5);
        assert!(arc.unsynced(Id(999), Some(Id(500)), ME));
        assert!(arc.unsettled(5));
        assert!(!arc.unsynced(Id(1), Some(Id(500)), ME), "outside our arc is not ours to answer");
    }
}
