//! Prints the batch-policy comparison of `orfeas_worker::simulation` (see its docs for the model).
//!
//!     cargo run --release -p orfeas-worker --example batch_sim -- [SEED] [JOBS]

use orfeas_worker::simulation::{Policy, arrivals, simulate};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(42);
    let jobs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(600);
    let a = arrivals(seed, jobs);
    let base = simulate(Policy::Fixed(1), &a).throughput_per_s;
    let mut out = format!(
        "seed {seed}, {jobs} jobs\n| policy | throughput (jobs/s) | vs batch 1 | p95 latency (s) | mean batch | OOMs |\n|---|---|---|---|---|---|\n"
    );
    for p in [
        Policy::Fixed(1),
        Policy::Fixed(4),
        Policy::Fixed(8),
        Policy::Dynamic,
    ] {
        let r = simulate(p, &a);
        let name = match p {
            Policy::Fixed(n) => format!("fixed {n}"),
            Policy::Dynamic => "dynamic (optimizer)".into(),
        };
        out.push_str(&format!(
            "| {name} | {:.3} | {:.2}× | {:.1} | {:.2} | {} |\n",
            r.throughput_per_s,
            r.throughput_per_s / base,
            r.p95_latency_s,
            r.mean_batch,
            r.ooms
        ));
    }
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()).ok();
}
