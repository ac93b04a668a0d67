//! pprof: decoding (raw, gzip or zstd by magic bytes), frame naming as Google's pprof does it,
//! conversion to stack trees, merging into one pprof, and Pyroscope's normalisation.

mod decode;
mod frames;
mod id_index;
mod merge;
mod to_tree;

/// The generated `perftools.profiles` types.
#[allow(missing_debug_implementations, clippy::all, unused_qualifications)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}

pub use decode::{DEFAULT_MAX_DECOMPRESSED_BYTES, PprofError, decode, encode_gzip};
pub use frames::FrameNames;
pub use id_index::IdIndex;
pub use merge::{MergeError, MergeOptions, ProfileMerger};
pub use proto::Profile;
pub use to_tree::{sample_type_index, to_tree, to_trees};
