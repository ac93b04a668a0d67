//! Generates the protobuf types with protox (pure Rust, so no system `protoc` is needed) and
//! prost, and their protojson (serde) forms with pbjson:
//!
//! * `proto/profile.proto` (`perftools.profiles`, pprof); its JSON form ignores unknown fields;
//! * `proto/otlp/*.proto` (the OTLP 1.9 profiles packages); their JSON form rejects unknown
//!   fields, as OTLP/HTTP JSON (Go protojson) does.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/profile.proto",
        "proto/otlp/common.proto",
        "proto/otlp/resource.proto",
        "proto/otlp/profiles.proto",
        "proto/otlp/profiles_service.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let encoded = descriptors.encode_to_vec();
    prost_build::Config::new().compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .ignore_unknown_fields()
        .build(&[".perftools.profiles"])?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .build(&[
            ".opentelemetry.proto.common.v1",
            ".opentelemetry.proto.resource.v1",
            ".opentelemetry.proto.profiles.v1development",
            ".opentelemetry.proto.collector.profiles.v1development",
        ])?;
    Ok(())
}
