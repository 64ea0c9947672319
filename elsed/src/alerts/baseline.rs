//! A robust baseline: the median of past observations and their median absolute deviation, so
//! that one bad hour in the history (an earlier outage) does not raise the bar for the next.

/// The median and the MAD of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub median: f64,
    pub mad: f64,
    /// How many observations it was made of.
    pub samples: usize,
}

/// The scale factor that makes the MAD estimate a normal distribution's standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Baseline {
    /// The baseline of `values`; an empty history is a baseline of 0 (a destination never seen
    /// failing is held to the minimum increase alone).
    pub fn of(values: &[f64]) -> Baseline {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let m = median(&sorted);
        let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - m).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        Baseline {
            median: m,
            mad: median(&deviations),
            samples: sorted.len(),
        }
    }

    /// The value above which an observation is abnormal: `factor` robust deviations above the
    /// median, and at least `min_increase` above it.
    pub fn upper_threshold(&self, factor: f64, min_increase: f64) -> f64 {
        (self.median + factor * MAD_TO_SIGMA * self.mad).max(self.median + min_increase)
    }
}

#[cfg(test)]
mod tests {
    use super::Baseline;

    #[test]
    fn one_outlier_in_the_history_does_not_move_the_baseline() {
        let calm = Baseline::of(&[0.02, 0.03, 0.02, 0.04, 0.03, 0.02, 0.03]);
        let with_outage = Baseline::of(&[0.02, 0.03, 0.02, 0.95, 0.03, 0.02, 0.03]);
        assert_eq!(calm.median, 0.03);
        assert_eq!(with_outage.median, 0.03);
        assert!((with_outage.mad - 0.01).abs() < 1e-9, "{with_outage:?}");
        let threshold = with_outage.upper_threshold(3.0, 0.3);
        assert!((threshold - 0.33).abs() < 1e-9, "{threshold}");
    }

    #[test]
    fn a_noisy_history_raises_the_threshold_above_the_minimum_increase() {
        let noisy = Baseline::of(&[0.1, 0.5, 0.2, 0.6, 0.3, 0.4, 0.1, 0.5]);
        assert!(noisy.upper_threshold(3.0, 0.3) > noisy.median + 0.3);
        let empty = Baseline::of(&[]);
        assert_eq!((empty.median, empty.samples), (0.0, 0));
        assert_eq!(empty.upper_threshold(3.0, 0.3), 0.3);
    }
}
