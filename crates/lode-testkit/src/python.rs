//! Python tools from PyPI for tests (a real S3 server, real Loki and OpenTelemetry clients),
//! installed once into a virtualenv under the workspace's `target/`. Concurrent test processes
//! wait on a lock directory instead of installing twice.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The virtualenv `target/<name>` with `packages` installed; returns its directory. A marker
/// file named after the package list records a finished install, so changing the list
/// installs again.
pub fn venv(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(name);
    let done = venv.join(format!(
        ".installed-{:08x}",
        crc32fast::hash(packages.join(" ").as_bytes())
    ));
    if done.exists() {
        return Ok(venv);
    }
    let lock = venv.with_extension("lock");
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::fs::create_dir_all(lock.parent().context("no parent")?).is_ok() && std::fs::create_dir(&lock).is_err() {
        if done.exists() {
            return Ok(venv);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for another process to install {packages:?} (remove {lock:?} if stale)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = (|| {
        if !done.exists() {
            let ok = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status()?
                .success()
                && Command::new(venv.join("bin/pip"))
                    .args(["install", "-q"])
                    .args(packages)
                    .status()?
                    .success();
            if ok {
                std::fs::write(&done, packages.join("\n"))?;
            }
            if !ok || !done.exists() {
                bail!("could not install {packages:?} into {venv:?} (needs python3 with venv and PyPI)");
            }
        }
        Ok(venv.clone())
    })();
    let _ = std::fs::remove_dir(&lock);
    result
}
