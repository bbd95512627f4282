//! Where webhooks may go. By default nowhere inside: a URL whose host resolves to a loopback,
//! private, link-local (cloud metadata lives there), shared, multicast or otherwise special
//! address is refused — at submission (422) and again at every delivery, which then connects to
//! the address it checked, so DNS cannot be made to point elsewhere in between.
//! `webhooks.allow` lists networks (`10.0.0.0/8`, `127.0.0.1/32`) that are allowed anyway, for
//! tests and private deployments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a network (address/prefix, e.g. 10.0.0.0/8 or fd00::/8)")]
pub struct BadNetwork(String);

impl std::str::FromStr for Network {
    type Err = BadNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadNetwork(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Network { addr, prefix })
    }
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((a, width), (b, w2)) = (bits(self.addr), bits(ip));
        if width != w2 {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift == width || (a >> shift) == (b >> shift)
    }
}

fn special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), benchmarking, reserved.
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn special_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is a metadata address)
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 to anywhere, private included
}

/// Whether webhooks may be sent to `ip`.
pub fn allowed(ip: IpAddr, allow: &[Network]) -> bool {
    if allow.iter().any(|n| n.contains(ip)) {
        return true;
    }
    match ip {
        IpAddr::V4(v) => !special_v4(v),
        IpAddr::V6(v) => !special_v6(v),
    }
}

/// Why a webhook URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("the webhook URL cannot be used: {0}")]
    Url(String),
    #[error("the webhook host {host} does not resolve: {detail}")]
    Unresolved { host: String, detail: String },
    #[error(
        "the webhook host {host} resolves to {addr}, which is not allowed (loopback, private, link-local or metadata); allow it with webhooks.allow"
    )]
    Internal { host: String, addr: IpAddr },
}

/// Resolves the URL's host and checks every address; returns the host and the address to
/// connect to.
pub async fn resolve(url: &str, allow: &[Network]) -> Result<(String, SocketAddr), Refused> {
    let parsed = url::Url::parse(url).map_err(|e| Refused::Url(e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| Refused::Url("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| Refused::Url("no port".into()))?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Refused::Unresolved {
            host: host.clone(),
            detail: e.to_string(),
        })?
        .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(Refused::Unresolved {
            host,
            detail: "no addresses".into(),
        });
    };
    // Every address must pass: a host that also resolves inside could be steered there.
    if let Some(bad) = addrs.iter().find(|a| !allowed(a.ip(), allow)) {
        return Err(Refused::Internal {
            host,
            addr: bad.ip(),
        });
    }
    Ok((host, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn inside_addresses_are_refused_unless_allowed() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!allowed(ip(inside), &[]), "{inside}");
        }
        for outside in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(allowed(ip(outside), &[]), "{outside}");
        }
        let allow: Vec<Network> = vec![
            "127.0.0.1/32".parse().expect("net"),
            "10.0.0.0/8".parse().expect("net"),
        ];
        assert!(allowed(ip("127.0.0.1"), &allow));
        assert!(allowed(ip("10.200.0.1"), &allow));
        assert!(!allowed(ip("127.0.0.2"), &allow));
        assert!(!allowed(ip("192.168.0.1"), &allow));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("nonsense".parse::<Network>().is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        let refused = resolve("http://localhost:9/x", &[]).await;
        assert!(
            matches!(refused, Err(Refused::Internal { .. })),
            "{refused:?}"
        );
        let ok = resolve(
            "http://127.0.0.1:9/x",
            &["127.0.0.0/8".parse().expect("net")],
        )
        .await;
        assert_eq!(ok.map(|(_, a)| a), Ok("127.0.0.1:9".parse().expect("addr")));
    }
}
