//! Cluster members for process-level tests: `lode -target=<role>` processes on loopback that
//! gossip over chitchat (fast: every 100 ms), serve gRPC on an OS-chosen port, and share the
//! store their config names.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::{DataDir, LodeProcess};

/// A free UDP port on loopback for a member's gossip (chitchat needs it known up front, as the
/// seed address of the others).
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The config section of a filesystem store shared by every member.
pub fn fs_store(dir: &Path) -> String {
    format!("storage_config:\n  filesystem:\n    directory: {}\n", dir.display())
}

/// A running member and the data directory holding its WAL and config (a restart passes the
/// same one back to [`Member::start`]).
pub struct Member {
    pub data: DataDir,
    pub p: LodeProcess,
}

impl Member {
    /// Starts `bin` as member `id` with role `target`, gossiping on `gossip` and joining through
    /// the member on `seed`. `sections` are top-level config sections (a `storage_config:` and
    /// any others); peers are UNHEALTHY `heartbeat_timeout` after their last heartbeat.
    pub async fn start(
        bin: &str,
        data: DataDir,
        target: &str,
        id: &str,
        sections: &str,
        heartbeat_timeout: &str,
        (gossip, seed): (u16, u16),
    ) -> anyhow::Result<Member> {
        let cfg = data.path().join("lode.yaml");
        std::fs::write(
            &cfg,
            format!("{sections}memberlist:\n  gossip_interval: 100ms\n  heartbeat_timeout: {heartbeat_timeout}\n"),
        )?;
        let p = LodeProcess::start(
            bin,
            &data,
            &[
                &format!("-config.file={}", cfg.display()),
                &format!("-target={target}"),
                &format!("-common.instance-id={id}"),
                "-server.grpc-listen-address=127.0.0.1",
                "-server.grpc-listen-port=0",
                "-memberlist.bind-addr=127.0.0.1",
                &format!("-memberlist.bind-port={gossip}"),
                &format!("-memberlist.join=127.0.0.1:{seed}"),
            ],
        )
        .await?;
        Ok(Member { data, p })
    }
}

/// Pushes `body` to `distributor` until it is taken (204). Until the distributor sees a
/// quorum of ACTIVE ingesters it answers 503; any other status, or no ring within 30 s, fails.
pub async fn push_once_ring_formed(
    distributor: &LodeProcess,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, text) = distributor.post("/loki/api/v1/push", headers, body.clone()).await?;
        match s {
            204 => return Ok(()),
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            503 => bail!("the ring never formed: {text}\n{}", distributor.log()),
            _ => bail!("push answered {s}: {text}"),
        }
    }
}
