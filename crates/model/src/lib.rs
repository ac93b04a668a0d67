//! The profile model of emberscope: label sets, profile type ids, and the stack tree with its
//! algebra (merge, truncation to `max_nodes`, and the renderings every query API needs: the
//! `FlameGraph` levels encoding, its diff form, tree bytes and collapsed text).
//!
//! This crate does no I/O and needs no async runtime: everything here is a plain function over
//! in-memory values. Decoding wire formats (pprof, JSON) lives in the `formats` crate.
//!
//! Main types: [`Tree`] (a merged call tree keyed by function-name paths), [`FlameGraph`] and
//! [`FlameGraphDiff`] (the level encodings of `api.md` §6.7), [`ProfileType`] (§6.2),
//! [`Labels`] (sorted label sets, §6.3) and [`Interner`] (a string table).
//!
//! It is also the shared vocabulary of the other crates: the label names the system gives
//! meaning to ([`label_names`]), time ([`time`]: the clock, ranges, Go-style durations) and
//! the ids of write requests and of the profiles they carry ([`write_request`]).

mod collapsed;
mod flamegraph;
mod interner;
pub mod label_names;
mod labels;
mod matchers;
mod profile_type;
mod tenant;
pub mod time;
mod tree;
mod tree_bytes;
mod truncate;
pub mod write_request;

pub use collapsed::{CollapsedError, parse_collapsed, write_collapsed};
pub use flamegraph::{DiffError, FlameGraph, FlameGraphDiff};
pub use interner::Interner;
pub use labels::{LabelPair, Labels};
pub use matchers::{MatchOp, Matcher, Selector, SelectorError, parse_selector};
pub use profile_type::{ProfileType, ProfileTypeError};
pub use tenant::{TenantId, TenantIdError};
pub use time::{Clock, SystemClock, TimeRange, TimeRangeError, format_duration, parse_duration};
pub use tree::{NodeId, Tree};
pub use tree_bytes::{TreeBytesError, tree_from_bytes};
pub use truncate::OTHER;
