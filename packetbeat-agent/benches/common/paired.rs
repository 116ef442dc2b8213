//! The ratios of issue 5 measured in interleaved rounds: in each round the read-and-count baseline,
//! the agent with 1 worker, with N workers, and N independent 1-worker replays run one after the
//! other, and the ratios are taken within the round. This machine's speed drifts by 20% and more
//! over seconds (other guests on the host); criterion measures one function's samples, then the
//! next's, so a ratio of two of its means can mix a fast minute with a slow one. The median of
//! per-round ratios compares runs made under the same conditions.
//!
//! The same ratios are also taken between the fastest round of each kind of run (`fastest`). The
//! host's disturbances only ever add time, and they hit the runs unevenly: the baseline is mostly
//! the kernel's page-cache copy, while the agent's own code slowed by up to 60% in some rounds
//! (1-worker keep-alive replays took 0.45-0.47 s in three rounds of one run and 0.55-0.71 s in
//! the other six). The fastest run of each kind is the one least disturbed. Written to
//! `target/bench-captures/<capture>.paired.json` for `cargo xtask bench`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use packetbeat_agent::protocols::registry::Registry;
use serde_json::json;

use crate::replay;

/// Rounds (fewer with criterion's `--quick`).
const ROUNDS: usize = 11;
const QUICK_ROUNDS: usize = 5;

/// One round's times, in seconds (`None` with one worker: nothing to scale).
struct Round {
    baseline: f64,
    one: f64,
    many: Option<f64>,
    ceiling: Option<f64>,
}

impl Round {
    /// Agent with 1 worker against the baseline, in percent.
    fn agent_vs_baseline_pct(&self) -> f64 {
        100.0 * self.baseline / self.one
    }

    /// N workers against 1.
    fn speedup(&self) -> Option<f64> {
        self.many.map(|many| self.one / many)
    }

    /// N independent 1-worker replays (N times the work) against one.
    fn ceiling_speedup(&self, n: usize) -> Option<f64> {
        self.ceiling.map(|c| n as f64 * self.one / c)
    }
}

fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs the rounds for the capture at `path` with up to `n` workers and writes the result beside it.
pub fn measure(path: &Path, registry: &Arc<Registry>, n: usize) {
    // Criterion's profiling mode runs one function under a profiler: nothing to compare.
    if std::env::args().any(|a| a.starts_with("--profile-time")) {
        return;
    }
    let rounds = if std::env::args().any(|a| a == "--quick") { QUICK_ROUNDS } else { ROUNDS };
    let replay_with = |workers: usize| replay::replay(path, registry, workers, Box::new(replay::Null));
    let mut table = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // An untimed read first: the host may have evicted pages of the file (this machine's DAMON
        // pages out what was not touched for a minute), and whichever run came first would pay the
        // disk reads; the baseline, which comes first, would look slower than it is.
        std::hint::black_box(replay::count_packets(path));
        let baseline = seconds(|| {
            std::hint::black_box(replay::count_packets(path));
        });
        let one = seconds(|| {
            replay_with(1);
        });
        let (many, ceiling) = if n > 1 {
            let many = seconds(|| {
                replay_with(n);
            });
            let ceiling = seconds(|| {
                std::thread::scope(|s| {
                    for _ in 0..n {
                        s.spawn(|| replay_with(1));
                    }
                });
            });
            (Some(many), Some(ceiling))
        } else {
            (None, None)
        };
        table.push(Round { baseline, one, many, ceiling });
    }
    let column = |f: &dyn Fn(&Round) -> Option<f64>| {
        let v: Vec<f64> = table.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let fastest = |f: &dyn Fn(&Round) -> Option<f64>| table.iter().filter_map(f).min_by(f64::total_cmp);
    // The fastest run of each kind, which may come from different rounds.
    let best = Round {
        baseline: fastest(&|r| Some(r.baseline)).unwrap_or(f64::NAN),
        one: fastest(&|r| Some(r.one)).unwrap_or(f64::NAN),
        many: fastest(&|r| r.many),
        ceiling: fastest(&|r| r.ceiling),
    };
    let doc = json!({
        "rounds": table
            .iter()
            .map(|r| json!({"baseline_s": r.baseline, "agent_1_s": r.one, "agent_n_s": r.many, "ceiling_s": r.ceiling}))
            .collect::<Vec<_>>(),
        "workers": n,
        "median_seconds": {
            "baseline": column(&|r| Some(r.baseline)),
            "agent_1": column(&|r| Some(r.one)),
            "agent_n": column(&|r| r.many),
            "ceiling": column(&|r| r.ceiling),
        },
        "agent_vs_baseline_pct": column(&|r| Some(r.agent_vs_baseline_pct())),
        "speedup": column(&Round::speedup),
        "ceiling_speedup": column(&|r| r.ceiling_speedup(n)),
        "fastest_seconds": { "baseline": best.baseline, "agent_1": best.one, "agent_n": best.many, "ceiling": best.ceiling },
        "fastest": {
            "agent_vs_baseline_pct": best.agent_vs_baseline_pct(),
            "speedup": best.speedup(),
            "ceiling_speedup": best.ceiling_speedup(n),
        },
    });
    let file = path.with_extension("paired.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).expect("JSON")).expect("write paired measurement");
    eprintln!("{}: paired rounds {doc}", path.display());
}
