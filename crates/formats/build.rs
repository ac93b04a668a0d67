//! Generates the pprof protobuf types from `proto/profile.proto` with protox (pure Rust, so no
//! system `protoc` is needed) and prost, and their protojson (serde) forms with pbjson.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/profile.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let encoded = descriptors.encode_to_vec();
    prost_build::Config::new().compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .ignore_unknown_fields()
        .build(&[".perftools.profiles"])?;
    Ok(())
}
