//! Generates the pprof protobuf types from `proto/profile.proto` with protox (pure Rust, so no
//! system `protoc` is needed) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/profile.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
