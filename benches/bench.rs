//! Benchmark entry point (`cargo bench`); see `docs/benchmarks.md`.

fn main() {}
