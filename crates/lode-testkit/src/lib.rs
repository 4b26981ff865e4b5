//! Test helpers for Lode's integration tests: start the real `lode` binary on a loopback port
//! chosen by the OS, with its own temporary data directory, wait until it is ready, stop it
//! gracefully (SIGTERM) or brutally (SIGKILL), restart it on the same data, and speak Loki's
//! HTTP API to it. `bodies` builds push requests independently of Lode's encoders; `s3` starts a real S3-compatible server for the object-store tests; `cluster` starts gossiping cluster members.

pub mod bodies;
pub mod cluster;
pub mod python;
mod s3;
pub use s3::S3Server;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// A running `lode` process.
pub struct LodeProcess {
    child: Child,
    pub base: String,
    data: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

/// A data directory that outlives one process, so tests can restart on it.
pub struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    pub fn new() -> anyhow::Result<Self> {
        Ok(DataDir {
            dir: tempfile::tempdir()?,
        })
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl LodeProcess {
    /// Starts `bin` (the `lode` binary) with its data under `data` and extra flags.
    pub async fn start(bin: &str, data: &DataDir, extra: &[&str]) -> anyhow::Result<LodeProcess> {
        let mut cmd = Command::new(bin);
        // Ingest-time discovery (on by default, as in Loki) adds `service_name` and
        // `detected_level` to what tests push; tests see exactly their own labels unless they
        // pass a `-validation.discover...` flag themselves.
        if !extra.iter().any(|a| a.starts_with("-validation.discover")) {
            cmd.arg("-validation.discover-service-name=")
                .arg("-validation.discover-log-levels=false");
        }
        cmd.arg("-server.http-listen-address=127.0.0.1")
            .arg("-server.http-listen-port=0")
            .arg(format!("-common.path-prefix={}", data.path().display()))
            .arg("-log.format=json")
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("cannot start {bin}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let sink = log.clone();
        // Drain stderr for the process's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("lode is ready") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let ready = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "lode did not become ready; log:\n{}",
                    log.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
                );
            }
        };
        let v: Value = serde_json::from_str(&ready).with_context(|| format!("ready line is not JSON: {ready}"))?;
        let addr = v["fields"]["addr"]
            .as_str()
            .context("ready line has no addr")?
            .to_string();
        let p = LodeProcess {
            child,
            base: format!("http://{addr}"),
            data: data.path().to_path_buf(),
            log,
            http: reqwest::Client::new(),
        };
        p.wait_ready().await?;
        Ok(p)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(format!("{}/ready", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("/ready never answered 200")
    }

    /// `http://host:port` of the running process.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The process id, for reading the server's CPU time and memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the object store keeps its files.
    pub fn store_dir(&self) -> PathBuf {
        self.data.join("store")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
    }

    /// SIGTERM, then wait for a clean exit (which flushes everything).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("lode exited with {status}; log:\n{}", self.log());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("lode did not stop within 30s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// POST a raw body to `path` with the given headers; returns status and body text.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> anyhow::Result<(u16, String)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// GET `path` with query parameters; returns status and body text.
    pub async fn get(
        &self,
        path: &str,
        params: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, String)> {
        let mut req = self.http.get(format!("{}{path}", self.base)).query(params);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// A successful `query_range`, parsed.
    pub async fn query_range(&self, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let (status, body) = self.get("/loki/api/v1/query_range", params, &[]).await?;
        if status != 200 {
            bail!("query_range answered {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

impl LodeProcess {
    /// A successful log `query_range` from 1 s before `t0` to 60 s after it (limit 1000),
    /// checked for Loki's envelope, as sorted `(stream labels, [(ts, line)])`.
    pub async fn streams_around(&self, q: &str, dir: &str, t0: i64) -> Vec<(Value, Vec<(String, String)>)> {
        let start = (t0 - 1_000_000_000).to_string();
        let end = (t0 + 60_000_000_000).to_string();
        let params = [
            ("query", q),
            ("direction", dir),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("limit", "1000"),
        ];
        let v = match self.query_range(&params).await {
            Ok(v) => v,
            Err(e) => panic!("query_range {q}: {e}"),
        };
        assert_eq!(v["status"], "success");
        assert_eq!(v["data"]["resultType"], "streams");
        assert!(v["data"]["stats"]["summary"]["totalBytesProcessed"].as_u64().is_some());
        streams(&v)
    }
}

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Expected `(ts, line)` pairs for lines at offsets (ns) after `t0`.
pub fn entries(t0: i64, lines: &[(i64, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(dt, l)| ((t0 + dt).to_string(), l.to_string()))
        .collect()
}

impl Drop for LodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(stream labels, [(ts, line)])` of a streams result, sorted by labels, for assertions.
pub fn streams(v: &Value) -> Vec<(Value, Vec<(String, String)>)> {
    let mut out: Vec<(Value, Vec<(String, String)>)> = v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let values = s["values"]
                        .as_array()
                        .map(|vs| {
                            vs.iter()
                                .map(|e| {
                                    (
                                        e[0].as_str().unwrap_or("").to_string(),
                                        e[1].as_str().unwrap_or("").to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (s["stream"].clone(), values)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(s, _)| s.to_string());
    out
}

/// Every line of a streams result, whatever its stream, sorted.
pub fn lines(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = streams(v)
        .into_iter()
        .flat_map(|(_, entries)| entries.into_iter().map(|(_, line)| line))
        .collect();
    out.sort();
    out
}
