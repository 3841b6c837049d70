//! The few statistics the benchmark reports: medians, paired ratios, percentiles.
//!
//! The machine is noisy and drifts (other builds come and go), so ratios are taken **per round**
//! (a configuration against the baseline measured in the same round, minutes apart at most) and
//! the median of those paired ratios is reported, rather than a ratio of two medians.

/// The median of `values` (the mean of the two middle values for an even count); `None` if empty
/// or if any value is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The `p`-th percentile (0..=100) by nearest rank: the smallest value with at least p% of the
/// values at or below it. `None` if empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// The median over rounds of `measured[round] / reference[round]`, using only rounds that have
/// both values (and a positive reference). Samples are `(round, value)` pairs.
pub fn paired_ratio(measured: &[(usize, f64)], reference: &[(usize, f64)]) -> Option<f64> {
    let ratios: Vec<f64> = measured
        .iter()
        .filter_map(|&(round, value)| {
            reference
                .iter()
                .find(|&&(r, _)| r == round)
                .and_then(|&(_, base)| (base > 0.0).then(|| value / base))
        })
        .collect();
    median(&ratios)
}

/// The smallest and largest value, for a noise indication.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn median_resists_one_outlier() {
        assert_eq!(median(&[10.0, 11.0, 10.5, 1000.0, 10.2]), Some(10.5));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn ratios_pair_rounds() {
        // Round 2 of the measured config has no baseline: it is left out.
        let baseline = [(0, 100.0), (1, 200.0), (3, 100.0)];
        let measured = [(0, 110.0), (1, 240.0), (2, 999.0), (3, 105.0)];
        let ratio = paired_ratio(&measured, &baseline).unwrap();
        assert!((ratio - 1.10).abs() < 1e-9, "{ratio}");
        assert_eq!(paired_ratio(&measured, &[]), None);
        assert_eq!(paired_ratio(&[(0, 1.0)], &[(0, 0.0)]), None);
    }

    #[test]
    fn range_of_values() {
        assert_eq!(range(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(range(&[]), None);
    }
}
