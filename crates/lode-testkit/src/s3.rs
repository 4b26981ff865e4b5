//! A real S3-compatible server for tests: moto's server (from PyPI), installed on first use into
//! a virtualenv under the workspace's `target/` and started on a loopback port. No mock: Lode's
//! S3 backend (object_store) talks real S3 HTTP to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const MOTO: &str = "moto[server]==5.2.5";

/// A running moto server with one bucket.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

/// Installs moto once (see [`crate::python::venv`]).
fn ensure_moto() -> anyhow::Result<PathBuf> {
    Ok(crate::python::venv("moto-venv", &[MOTO])?.join("bin/moto_server"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl S3Server {
    /// Starts moto on a free loopback port and creates `bucket`.
    pub async fn start(bucket: &str) -> anyhow::Result<S3Server> {
        let bin = ensure_moto()?;
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start moto_server")?;
        let s = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(&s.endpoint).send().await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("moto_server did not start on {}", s.endpoint);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = http.put(format!("{}/{bucket}", s.endpoint)).send().await?;
        if !r.status().is_success() {
            bail!("creating bucket {bucket} failed: {}", r.status());
        }
        Ok(s)
    }

    /// Keys in the bucket (from S3's XML listing), for assertions.
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let body = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await?
            .text()
            .await?;
        Ok(body
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect())
    }

    /// A Lode config section selecting this server as the store.
    pub fn storage_yaml(&self) -> String {
        format!(
            "storage_config:\n  backend: s3\n  s3:\n    endpoint: {}\n    bucket_name: {}\n    access_key_id: test\n    secret_access_key: test\n    insecure: true\n    s3_force_path_style: true\n    max_retries: 2\n",
            self.endpoint, self.bucket
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
