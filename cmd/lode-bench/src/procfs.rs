//! The server's cost, read from `/proc` (Linux): CPU time of a process (all threads, user +
//! system) and its resident memory. Used around the push and query phases when `--pid` is given;
//! reading it here rather than through the bench's own clock keeps the generator's CPU out.

use anyhow::{Context, bail};

/// Clock ticks per second of `/proc/<pid>/stat` times: `getconf CLK_TCK`, else 100 (the value
/// on every mainstream Linux architecture).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User + system CPU seconds of `pid` so far (`"self"` works too).
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat_cpu(&text).map(|ticks| ticks as f64 / clock_ticks())
}

/// utime + stime (fields 14 and 15) in ticks; the command name may contain spaces and
/// parentheses, so fields are counted after the last `)`.
fn parse_stat_cpu(text: &str) -> anyhow::Result<u64> {
    let Some((_, rest)) = text.rsplit_once(')') else {
        bail!("unexpected /proc stat format: {text:?}");
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> anyhow::Result<u64> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unexpected /proc stat format: {text:?}"))
    };
    Ok(num(11)? + num(12)?)
}

/// Resident memory: `(VmRSS, VmHWM)` in bytes (current and peak).
pub fn rss_bytes(pid: &str) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let stat = "1234 (lode (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat_cpu(stat).expect("parses"), 300);
        assert!(parse_stat_cpu("garbage").is_err());
    }

    #[test]
    fn reads_our_own_process() {
        assert!(cpu_seconds("self").expect("cpu") >= 0.0);
        let (rss, hwm) = rss_bytes("self").expect("rss");
        assert!(rss > 0 && hwm >= rss);
    }
}
