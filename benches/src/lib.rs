//! Shared inputs for the benchmarks under `benches/`.
