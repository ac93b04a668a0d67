//! Decoders and encoders of profile formats: pprof (decoding by magic bytes with a size limit,
//! frame naming, merging, and Pyroscope's normalisation and validation), OTLP profiles (converted
//! to pprof as Pyroscope does), flamebearer JSON and Graphviz DOT.
//!
//! Like `model`, this crate does no I/O and needs no async runtime: every function takes bytes
//! or decoded values and returns values. Main entry points: [`pprof::decode`],
//! [`pprof::to_trees`], [`pprof::ProfileMerger`], [`otlp::convert`], [`compression::decompress`].

pub mod compression;
pub mod detect;
pub mod dot;
pub mod flamebearer;
pub mod jfr;
pub mod otlp;
pub mod pprof;
pub mod text;
