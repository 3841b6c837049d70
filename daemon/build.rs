//! Builds the kernel programs (ebpf/probes) with aya-build and leaves the object in OUT_DIR, where
//! `sensors::loader` embeds it with `include_bytes_aligned!`.
//!
//! `AYA_BUILD_SKIP=1` skips the BPF build (unit tests of pure userspace modules); the binary then
//! embeds an empty object and `sealwatch run` refuses to start with a message saying so.

use std::{env, fs, path::PathBuf};

use anyhow::{anyhow, Context as _};

const PROBES_PACKAGE: &str = "sealwatch-probes";

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join(PROBES_PACKAGE);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(&object, [])
            .with_context(|| format!("writing placeholder {}", object.display()))?;
        return Ok(());
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let probes = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == PROBES_PACKAGE)
        .ok_or_else(|| anyhow!("package {PROBES_PACKAGE} not found in the workspace"))?;
    let root_dir = probes
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{PROBES_PACKAGE} manifest has no parent directory"))?;
    // aya-build watches the probes directory; the ABI crate they share with us changes their
    // layout too.
    if let Some(ebpf_dir) = root_dir.parent() {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join("abi").as_str());
    }
    let package = aya_build::Package {
        name: PROBES_PACKAGE,
        root_dir: root_dir.as_str(),
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default())
}
