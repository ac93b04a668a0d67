//! Generates the API types from `proto/*.proto` with protox and prost (no system protoc), and
//! their protojson (serde) forms with pbjson: Connect JSON is protojson.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/types.proto",
        "proto/push.proto",
        "proto/querier.proto",
        "proto/settings.proto",
        "proto/capabilities.proto",
        "proto/version.proto",
        "proto/segmentwriter.proto",
        "proto/querybackend.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let encoded = descriptors.encode_to_vec();
    // A segment writer's profiles travel as `Bytes`: encoded from the distributor's buffers,
    // decoded as slices of the request body, never copied on their own.
    prost_build::Config::new()
        .bytes([".segmentwriter.v1.Profile.pprof"])
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        // connect-go's protojson codec discards unknown fields.
        .ignore_unknown_fields()
        .build(&[
            ".types.v1",
            ".push.v1",
            ".querier.v1",
            ".settings.v1",
            ".capabilities.v1",
            ".version.v1",
            ".segmentwriter.v1",
            ".querybackend.v1",
        ])?;
    Ok(())
}
