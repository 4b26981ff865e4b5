//! `ip("...")` line filters: `|= ip("10.0.0.0/8")` keeps lines that mention an address in the
//! range, `!= ip(..)` drops them. Mirrors Loki's `log/ip.go`: the pattern is a single address, a
//! CIDR prefix or an `a-b` range (IPv4 or IPv6); candidate addresses are found in the line with
//! Loki's cheap prefix hints and character sets rather than a regex, quirks included (after a
//! candidate that does not match, the scan skips one byte past it).

use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
enum IpMatcher {
    Addr(IpAddr),
    Prefix(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

/// A compiled `ip("...")` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpFilter {
    matcher: IpMatcher,
}

const IPV4_CHARSET: &[u8] = b"0123456789.";
const IPV6_CHARSET: &[u8] = b"0123456789abcdefABCDEF:.";

fn parse_prefix(s: &str) -> Option<IpMatcher> {
    let (addr, bits) = s.split_once('/')?;
    let addr = IpAddr::from_str(addr).ok()?;
    // Go's netip: decimal bits, no sign or leading zeros, within the family's width.
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || (bits.len() > 1 && bits.starts_with('0')) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(IpMatcher::Prefix(addr, bits))
}

fn parse_range(s: &str) -> Option<IpMatcher> {
    let (from, to) = s.split_once('-')?;
    let (from, to) = (IpAddr::from_str(from).ok()?, IpAddr::from_str(to).ok()?);
    (from.is_ipv4() == to.is_ipv4() && from <= to).then_some(IpMatcher::Range(from, to))
}

fn masked(ip: IpAddr, bits: u8) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4).checked_shr(32 - u32::from(bits)).unwrap_or(0)),
        IpAddr::V6(v6) => u128::from(v6).checked_shr(128 - u32::from(bits)).unwrap_or(0),
    }
}

impl IpFilter {
    /// Parses an address, CIDR prefix or range, with Loki's error message.
    pub fn new(pattern: &str) -> Result<IpFilter, String> {
        let matcher = IpAddr::from_str(pattern)
            .ok()
            .map(IpMatcher::Addr)
            .or_else(|| parse_prefix(pattern))
            .or_else(|| parse_range(pattern))
            .ok_or_else(|| format!("ip: invalid pattern: {pattern:?}"))?;
        Ok(IpFilter { matcher })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match self.matcher {
            IpMatcher::Addr(a) => a == ip,
            IpMatcher::Prefix(p, bits) => p.is_ipv4() == ip.is_ipv4() && masked(p, bits) == masked(ip, bits),
            IpMatcher::Range(from, to) => from.is_ipv4() == ip.is_ipv4() && from <= ip && ip <= to,
        }
    }

    /// Whether the line mentions an address the pattern covers.
    pub fn matches(&self, line: &[u8]) -> bool {
        let n = line.len();
        let mut i = 0;
        while i < n {
            let charset = if i + 3 < n && ipv4_hint(&line[i..i + 4]) {
                IPV4_CHARSET
            } else if i + 4 < n && ipv6_hint(&line[i..i + 5]) {
                IPV6_CHARSET
            } else {
                i += 1;
                continue;
            };
            let len = line[i..].iter().take_while(|b| charset.contains(b)).count();
            let candidate = std::str::from_utf8(&line[i..i + len])
                .ok()
                .and_then(|s| IpAddr::from_str(s).ok());
            if candidate.is_some_and(|ip| self.contains(ip)) {
                return true;
            }
            i += len + 1;
        }
        false
    }
}

fn ipv4_hint(p: &[u8]) -> bool {
    p[0].is_ascii_digit() && (p[1] == b'.' || p[2] == b'.' || p[3] == b'.')
}

fn ipv6_hint(p: &[u8]) -> bool {
    let hex = |b: u8| b.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && hex(p[2]))
        || (hex(p[0]) && p[1] == b':')
        || (hex(p[0]) && hex(p[1]) && p[2] == b':')
        || (hex(p[0]) && hex(p[1]) && hex(p[2]) && p[3] == b':')
        || (hex(p[0]) && hex(p[1]) && hex(p[2]) && hex(p[3]) && p[4] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, line: &str) -> bool {
        IpFilter::new(pattern).unwrap().matches(line.as_bytes())
    }

    #[test]
    fn single_cidr_and_range() {
        assert!(m("192.168.0.1", "from 192.168.0.1 port 22"));
        assert!(!m("192.168.0.1", "from 192.168.0.10 port 22"));
        assert!(m("192.168.0.0/16", "client=192.168.4.5:8080"));
        assert!(!m("192.168.0.0/16", "client=192.169.4.5"));
        assert!(m("10.0.0.0/8", "a 1.2.3.4 b 10.9.9.9"));
        assert!(m("192.168.0.1/16", "x 192.168.200.1"), "host bits are masked, as in Go");
        assert!(m("0.0.0.0/0", "1.1.1.1"));
        assert!(m("192.168.0.1-192.168.0.20", "ip=192.168.0.7"));
        assert!(!m("192.168.0.1-192.168.0.20", "ip=192.168.0.21"));
        assert!(m("2001:db8::/32", "addr 2001:db8::1 ok"));
        assert!(m("::1", "lo ::1 up"));
        // Loki's hints need five bytes, so an IPv6 address this short at the end goes unseen.
        assert!(!m("::1", "lo ::1"));
        assert!(!m("2001:db8::/32", "addr 2001:db9::1"));
        assert!(!m("10.0.0.0/8", "10.0.0.1.2"), "not an address");
        assert!(!m("10.0.0.1", ""));
    }

    #[test]
    fn invalid_patterns() {
        for p in [
            "",
            "x",
            "10.0.0.0/33",
            "10.0.0.0/08",
            "10.0.0.2-10.0.0.1",
            "10.0.0.1-::1",
            "10.0.0.1 - 10.0.0.2",
        ] {
            assert_eq!(
                IpFilter::new(p).unwrap_err(),
                format!("ip: invalid pattern: {p:?}"),
                "{p}"
            );
        }
    }
}
