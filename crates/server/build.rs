//! Generates the API types from `proto/*.proto` with protox and prost (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/types.proto",
        "proto/push.proto",
        "proto/querier.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
