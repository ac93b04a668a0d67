//! pprof: decoding (raw, gzip or zstd by magic bytes), frame naming as Google's pprof does it,
//! conversion to stack trees, merging into one pprof, and Pyroscope's normalisation.

mod decode;
mod frames;
mod go_fix;
mod id_index;
mod ingest_fixes;
mod merge;
mod normalize;
mod series;
mod to_tree;
mod validate;
mod view;

/// The generated `perftools.profiles` types.
#[allow(missing_debug_implementations, clippy::all, unused_qualifications)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.serde.rs"));
}

pub use decode::{
    DEFAULT_MAX_DECOMPRESSED_BYTES, PprofError, decode, decode_for_ingest, encode_gzip,
};
pub use frames::{FrameNames, unnamed_frame};
pub use go_fix::{
    drop_go_type_parameters, fix_go_profile, may_have_truncated_go_stacks,
    repair_go_truncated_stacks,
};
pub use id_index::IdIndex;
pub use ingest_fixes::{
    fix_dotnet, fix_scripting_function_names, fix_time, is_dotnet_spy, is_scripting_spy,
};
pub use merge::{MergeError, MergeOptions, ProfileMerger, ViewIndex, set_select_merge_metadata};
pub use normalize::normalize;
pub use proto::Profile;
pub use series::{
    LabelLimits, Prepared, PreparedView, RewriteSlot, SeriesProfile, SeriesSamples, prepare_push,
    prepare_view, profile_language, profile_type_labels, request_labels, split_by_sample_labels,
    upload_profile_name, validate_labels,
};
pub use to_tree::{add_to_tree, to_tree, to_trees};
pub use validate::{
    ProfileLimits, Reason, ValidationError, go_quote, labels_string, validate_profile,
};
pub use view::{
    FunctionView, LabelView, LineView, LocationView, ProfileView, SampleView, ViewBuffers,
};
