//! The per-stage timing table printed at the end of `orfeas generate`.

use std::time::Duration;

use orfeas_pipeline::{Stage, StageTimings};

/// Sums stage times over items and renders a table with each stage's share, ending with the
/// slowest stage (the seed's "Slowest stage: shape_generation (51.2%)"). Each item is given with
/// the size of the engine batch it ran in: every item of a batch records the batch's whole
/// `shape_generation` time, so the table counts 1/batch_size of it per item.
pub fn timing_table<'a>(items: impl IntoIterator<Item = (&'a StageTimings, usize)>) -> String {
    let mut total = StageTimings::default();
    let mut count = 0usize;
    for (t, batch_size) in items {
        count += 1;
        for (stage, d) in t.iter() {
            let d = if stage == Stage::ShapeGeneration {
                d / u32::try_from(batch_size.max(1)).unwrap_or(u32::MAX)
            } else {
                d
            };
            total.record(stage, d);
        }
    }
    let items = count;
    let sum = total.total().as_secs_f64();
    let mut out = String::new();
    out.push_str(&format!(
        "{:<22}{:>12}{:>14}{:>9}\n",
        "stage", "total (s)", "per image (s)", "share"
    ));
    for stage in Stage::ALL {
        let d = total.get(stage).unwrap_or(Duration::ZERO).as_secs_f64();
        let share = if sum > 0.0 { 100.0 * d / sum } else { 0.0 };
        out.push_str(&format!(
            "{:<22}{:>12.3}{:>14.3}{:>8.1}%\n",
            stage.as_str(),
            d,
            d / items.max(1) as f64,
            share
        ));
    }
    out.push_str(&format!("{:<22}{:>12.3}\n", "total", sum));
    if let Some((stage, share)) = total.slowest() {
        out.push_str(&format!("Slowest stage: {stage} ({:.1}%)\n", share * 100.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sums_items_and_names_the_slowest_stage() {
        let mut a = StageTimings::default();
        a.record(Stage::ImageLoading, Duration::from_millis(100));
        a.record(Stage::ShapeGeneration, Duration::from_millis(500));
        let mut b = StageTimings::default();
        b.record(Stage::ImageLoading, Duration::from_millis(100));
        b.record(Stage::ShapeGeneration, Duration::from_millis(300));
        let table = timing_table([(&a, 1), (&b, 1)]);
        assert!(
            table.contains("Slowest stage: shape_generation (80.0%)"),
            "{table}"
        );
        let loading = table
            .lines()
            .find(|l| l.starts_with("image_loading"))
            .expect("loading row");
        assert!(
            loading.contains("0.200") && loading.contains("0.100") && loading.contains("20.0%")
        );
    }

    #[test]
    fn a_shared_batch_counts_once() {
        let mut a = StageTimings::default();
        a.record(Stage::ShapeGeneration, Duration::from_millis(600));
        let table = timing_table([(&a, 2), (&a.clone(), 2)]);
        let row = table
            .lines()
            .find(|l| l.starts_with("shape_generation"))
            .expect("shape row");
        assert!(row.contains("0.600") && row.contains("0.300"), "{row}");
    }
}
