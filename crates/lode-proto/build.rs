//! Compiles the workspace's `proto/*.proto` with the vendored `protoc` (protoc-bin-vendored), so a
//! fresh machine builds with `cargo build` alone. New gRPC services: drop the `.proto` into
//! `proto/`, list it in `PROTOS` and include the generated package module in `src/lib.rs`.
//!
//! protoc is run here directly (to a descriptor set) rather than through `PROTOC`: setting an
//! environment variable is `unsafe` in edition 2024 and the workspace forbids `unsafe_code`.

use std::path::PathBuf;
use std::process::Command;

use prost::Message;

/// Proto files under the workspace's `proto/` directory, compiled in one protoc run.
const PROTOS: &[&str] = &["push.proto", "ingester.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let descriptor_path = out_dir.join("lode_descriptor.bin");

    let mut cmd = Command::new(&protoc);
    cmd.arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", descriptor_path.display()))
        .arg(format!("--proto_path={}", proto_dir.display()))
        .arg(format!(
            "--proto_path={}",
            protoc_bin_vendored::include_path()?.display()
        ));
    for p in PROTOS {
        cmd.arg(proto_dir.join(p));
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "protoc ({}) failed: {}",
            protoc.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }

    let fds = prost_types::FileDescriptorSet::decode(std::fs::read(&descriptor_path)?.as_slice())?;
    tonic_prost_build::configure().compile_fds(fds)?;

    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
