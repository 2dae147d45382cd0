//! Small statistics helpers: summaries of hop counts (nearest-rank percentiles), lookup tallies
//! and the exponential inter-arrival times of a Poisson process.

use rand::Rng;

/// How a lookup ended, judged against the oracle when it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The live, true owner, after this many remote hops.
    Correct { hops: u32 },
    /// The lookup gave up (its deadline passed, or it ran out of nodes to ask).
    Failed,
    /// The owner returned is dead.
    DeadOwner,
    /// The owner returned is alive but is not the owner (an inconsistent lookup).
    WrongOwner,
}

/// Mean, median, 99th percentile and maximum of integer samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub p50: u32,
    pub p99: u32,
    pub max: u32,
}

impl Summary {
    pub fn of(samples: &[u32]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let sum: u64 = sorted.iter().map(|&s| s as u64).sum();
        Summary {
            count: sorted.len(),
            mean: sum as f64 / sorted.len() as f64,
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            max: *sorted.last().expect("non-empty"),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Share of samples per value 0..=max.
pub fn histogram(samples: &[u32]) -> Vec<f64> {
    let max = samples.iter().copied().max().unwrap_or(0) as usize;
    let mut counts = vec![0usize; max + 1];
    for &s in samples {
        counts[s as usize] += 1;
    }
    counts.iter().map(|&c| c as f64 / samples.len().max(1) as f64).collect()
}

/// Outcomes of a batch of lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub total: usize,
    pub gave_up: usize,
    pub dead_owner: usize,
    pub wrong_owner: usize,
    pub hops: Vec<u32>,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Correct { hops } => self.hops.push(hops),
            Outcome::Failed => self.gave_up += 1,
            Outcome::DeadOwner => self.dead_owner += 1,
            Outcome::WrongOwner => self.wrong_owner += 1,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        self.gave_up += other.gave_up;
        self.dead_owner += other.dead_owner;
        self.wrong_owner += other.wrong_owner;
        self.hops.extend_from_slice(&other.hops);
    }

    pub fn failed(&self) -> usize {
        self.total - self.hops.len()
    }

    /// Failed share in percent.
    pub fn failed_pct(&self) -> f64 {
        percent(self.failed(), self.total)
    }

    pub fn wrong_pct(&self) -> f64 {
        percent(self.wrong_owner, self.total)
    }
}

pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Time to the next event of a Poisson process with `rate` events per unit of time.
pub fn exponential(rng: &mut impl Rng, rate: f64) -> f64 {
    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    -u.ln() / rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let s = Summary::of(&(1..=100).collect::<Vec<u32>>());
        assert_eq!((s.p50, s.p99, s.max), (50, 99, 100));
        assert!((s.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn histogram_shares_sum_to_one() {
        let h = histogram(&[0, 1, 1, 3]);
        assert_eq!(h, vec![0.25, 0.5, 0.0, 0.25]);
    }
}
