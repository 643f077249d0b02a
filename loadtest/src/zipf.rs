//! A Zipf sampler over ranks `0..n`: rank `k` (0-based) is drawn with probability
//! proportional to `1 / (k + 1)^s`. Registration traffic is like that: a handful of intro
//! sections take most of the requests. Written out here (a cumulative table and a binary
//! search) because it is twenty lines and the table is built once for the whole run.

use rand::Rng;

/// Zipf distribution over `0..n`, as a cumulative probability table.
#[derive(Clone, Debug)]
pub struct Zipf {
    /// `cdf[k]` = P(rank <= k); the last entry is exactly 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// Ranks `0..n` (`n >= 1`) with exponent `s` (`s >= 0`; 0 is uniform, ~1.1 is "a few very hot").
    pub fn new(n: usize, s: f64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += (k as f64).powf(-s);
            cdf.push(total);
        }
        for p in &mut cdf {
            *p /= total;
        }
        // Rounding must never leave a uniform draw past the end.
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        Self { cdf }
    }

    /// Number of ranks.
    #[cfg(test)]
    fn ranks(&self) -> usize {
        self.cdf.len()
    }

    /// Probability of rank `k`.
    #[cfg(test)]
    fn probability(&self, k: usize) -> f64 {
        match k {
            0 => self.cdf[0],
            k if k < self.cdf.len() => self.cdf[k] - self.cdf[k - 1],
            _ => 0.0,
        }
    }

    /// Draw a rank.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.random();
        self.cdf
            .partition_point(|&p| p <= u)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn single_rank_is_always_drawn() {
        let z = Zipf::new(1, 1.1);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| z.sample(&mut rng) == 0));
        assert_eq!(z.probability(0), 1.0);
    }

    #[test]
    fn probabilities_follow_the_power_law() {
        let z = Zipf::new(400, 1.1);
        let ratio = z.probability(0) / z.probability(1);
        assert!((ratio - 2f64.powf(1.1)).abs() < 1e-9);
        assert!((0..399).all(|k| z.probability(k) > z.probability(k + 1)));
        let sum: f64 = (0..400).map(|k| z.probability(k)).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

    #[test]
    fn samples_match_the_table() {
        let z = Zipf::new(50, 1.1);
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let mut counts = vec![0usize; z.ranks()];
        for _ in 0..n {
            counts[z.sample(&mut rng)] += 1;
        }
        for k in [0, 1, 5, 49] {
            let expected = z.probability(k) * n as f64;
            let err = (counts[k] as f64 - expected).abs() / expected;
            assert!(err < 0.1, "rank {k}: {} vs {expected}", counts[k]);
        }
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let z = Zipf::new(4, 0.0);
        assert!((0..4).all(|k| (z.probability(k) - 0.25).abs() < 1e-12));
    }
}
