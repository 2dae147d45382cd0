//! Connection troubles (a handshake that failed, a peer that broke the protocol) are reported
//! to the user as `ERR_BAD_PEER` events — at a bounded rate. An attacker opening thousands of
//! junk connections a second would otherwise make the node format, queue and hand to
//! JavaScript thousands of events a second: CPU taken from the users it serves, and a log
//! flooded. Past [`REPORTS_PER_SECOND`] in a one-second window the rest are counted, and one
//! summary event says how many were held back.

use std::time::{Duration, Instant};

/// Connection troubles reported one by one per second; the rest are summed up.
pub const REPORTS_PER_SECOND: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct ReportLimiter {
    window_start: Option<Instant>,
    reported: u32,
    held: u64,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Report this one.
    Report,
    /// Count it; `first`: the first held back in this window (schedule the summary).
    Hold { first: bool },
}

impl ReportLimiter {
    pub fn offer(&mut self, now: Instant) -> Verdict {
        if self.window_start.is_none_or(|start| now >= start + WINDOW) && self.held == 0 {
            self.window_start = Some(now);
            self.reported = 0;
        }
        if self.reported < REPORTS_PER_SECOND && self.held == 0 {
            self.reported += 1;
            return Verdict::Report;
        }
        self.held += 1;
        Verdict::Hold { first: self.held == 1 }
    }

    /// The summary is due: how many were held back (the next window starts afresh).
    pub fn take_held(&mut self) -> u64 {
        self.window_start = None;
        std::mem::take(&mut self.held)
    }

    /// When the summary of troubles held back since `now`'s window began is due.
    pub fn summary_due(&self, now: Instant) -> Instant {
        self.window_start.map_or(now, |start| start + WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_a_second_then_counted_until_the_summary() {
        let mut limiter = ReportLimiter::default();
        let start = Instant::now();
        for _ in 0..REPORTS_PER_SECOND {
            assert_eq!(limiter.offer(start), Verdict::Report);
        }
        assert_eq!(limiter.offer(start), Verdict::Hold { first: true });
        assert_eq!(limiter.offer(start + Duration::from_millis(10)), Verdict::Hold { first: false });
        // Past the window but before the summary went out: still held, counted in it.
        assert_eq!(limiter.offer(start + Duration::from_millis(1_500)), Verdict::Hold { first: false });
        assert_eq!(limiter.summary_due(start), start + WINDOW);
        assert_eq!(limiter.take_held(), 3);
        assert_eq!(limiter.offer(start + Duration::from_millis(1_600)), Verdict::Report, "a fresh window");
        assert_eq!(limiter.take_held(), 0);
    }
}
