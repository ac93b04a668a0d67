//! OTLP profiles → pprof, as Grafana Pyroscope v1.18.2 converts an OTLP
//! `ExportProfilesServiceRequest` (OTLP 1.9, `profiles.v1development`) before pushing it through
//! its ordinary pprof ingest path. The behaviour note is `docs/research/otlp_ingest.md`; §4
//! (export: service names, series labels) and §5 (one `Profile` → pprof per sample service name)
//! are the rules this module follows.
//!
//! What it owns: the generated OTLP types ([`proto`], with protojson serde impls that reject
//! unknown fields, as OTLP/HTTP JSON does) and [`convert`]. What it does not: transport (gRPC,
//! OTLP/HTTP, body limits), tenancy, and everything after conversion — the server hands every
//! [`OtlpSeries`] to [`crate::pprof::prepare_view`] (validation, normalisation with
//! `clearAddresses`, the split by sample labels, label sanitisation), as Pyroscope's distributor
//! does with its push.
//!
//! Differences to Pyroscope, on purpose:
//! * **All or nothing.** Pyroscope pushes each `Profile` message as soon as it is converted, so a
//!   conversion error leaves the profiles before it stored. [`convert`] converts the whole request
//!   first and returns only the error; the caller treats the request as failed.
//! * **Deterministic order.** Series come in request order (resource, scope, profile), then per
//!   sample service name in first-seen order; the mappings a sample creates come in first-seen
//!   order of its stack (Go iterates maps there).
//! * **Bounded output.** A pprof sample lists its locations, and every pprof of a request copies
//!   the strings and series labels it uses, so a small request (many samples sharing one deep
//!   stack, many sample service names sharing long strings) could expand a lot. Work per sample
//!   is proportional to the sample and its stack (everything derived from a dictionary entry is
//!   computed once per pprof), and [`convert`] refuses a request whose output would take more
//!   than [`OUTPUT_WORDS_BASE`] + [`OUTPUT_WORDS_PER_INPUT_BYTE`] × (its protobuf size) 8-byte
//!   words ([`ConvertError::TooLarge`]); the base alone is 128 MiB, more than Pyroscope's
//!   default limits (16 000 samples of at most 1 000 frames) ever keep.
//!
//! Where the note leaves room (not checked against Pyroscope's code): the build id lookup stops
//! at the first bad attribute index; `has_inline_frames` is set only when none of the mapping's
//! locations in the stack has lines (it changes no golden); a function's bad string index is
//! reported as `could not access function {name,system name,file name} string: …`, without the
//! `could not process line at index I:` prefix that a bad function index gets.
//!
//! Main items: [`convert`], [`OtlpSeries`], [`OtlpError`] / [`ConvertError`], and the request
//! type [`ExportProfilesServiceRequest`] (prost `Message` for the wire, serde for protojson).

mod convert;
mod error;
mod lookup;
mod profile;
#[cfg(test)]
mod tests;

pub use convert::{OUTPUT_WORDS_BASE, OUTPUT_WORDS_PER_INPUT_BYTE, OtlpSeries, convert};
pub use error::{ConvertError, OtlpError, OutOfBounds, ValueTypeError};
pub use proto::{ExportProfilesServiceRequest, ExportProfilesServiceResponse};

/// The generated OTLP types, one module per protobuf package (the generated code refers to
/// sibling packages by relative paths, so the package hierarchy is mirrored).
#[allow(missing_debug_implementations, clippy::all, unused_qualifications)]
pub mod proto {
    pub mod opentelemetry {
        pub mod proto {
            pub mod common {
                pub mod v1 {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.common.v1.rs"
                    ));
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.common.v1.serde.rs"
                    ));
                }
            }
            pub mod resource {
                pub mod v1 {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.resource.v1.rs"
                    ));
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.resource.v1.serde.rs"
                    ));
                }
            }
            pub mod profiles {
                pub mod v1development {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.profiles.v1development.rs"
                    ));
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/opentelemetry.proto.profiles.v1development.serde.rs"
                    ));
                }
            }
            pub mod collector {
                pub mod profiles {
                    pub mod v1development {
                        include!(concat!(
                            env!("OUT_DIR"),
                            "/opentelemetry.proto.collector.profiles.v1development.rs"
                        ));
                        include!(concat!(
                            env!("OUT_DIR"),
                            "/opentelemetry.proto.collector.profiles.v1development.serde.rs"
                        ));
                    }
                }
            }
        }
    }

    pub use opentelemetry::proto::collector::profiles::v1development::{
        ExportProfilesPartialSuccess, ExportProfilesServiceRequest, ExportProfilesServiceResponse,
    };
    pub use opentelemetry::proto::common::v1 as common;
    pub use opentelemetry::proto::profiles::v1development as profiles;
    pub use opentelemetry::proto::resource::v1 as resource;
}
