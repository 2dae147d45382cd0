//! Addresses from the wire: which `host:port` a peer may name as a node's address, and which a
//! node may dial on a peer's word. Pure (text in, verdict out, no resolution), so the
//! transport's Hello check, the mesh's peer exchange and the engine's connection policy apply
//! one rule. docs/PROTOCOL.md §6.1 ("Addresses") is the normative text.
//!
//! - Never an address: no port (0), the unspecified address (`0.0.0.0`, and the rest of
//!   `0.0.0.0/8`, "this network", which no packet may be sent to; `::`), the limited broadcast
//!   (`255.255.255.255`) and multicast (`224.0.0.0/4`, `ff00::/8`). Dialing them reaches this
//!   host (the unspecified address does on Linux), every host of a link, or a group: a peer that
//!   names one is refused.
//! - Loopback (`127.0.0.0/8`, `::1`, `localhost`) is a real address for nodes that all run on
//!   one machine; a node that itself listens elsewhere dials no loopback address on a peer's
//!   word (it would reach services of its own machine the peer cannot reach).
//! - Host names other than `localhost` are resolved when dialed, so they are not judged here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address named by a peer is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    NoHost,
    NoPort,
    Unspecified,
    Broadcast,
    Multicast,
    /// A loopback address, named to a node that does not listen on one.
    Loopback,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unusable::NoHost => "an empty host",
            Unusable::NoPort => "port 0",
            Unusable::Unspecified => "the unspecified address (this host, not an address to reach it at)",
            Unusable::Broadcast => "the broadcast address",
            Unusable::Multicast => "a multicast address",
            Unusable::Loopback => "a loopback address, named to a node that does not listen on loopback",
        })
    }
}

/// What kind of host a text names (`None`: a host name, resolved only when dialed).
fn kind(host: &str) -> Option<Result<bool, Unusable>> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let lower = bare.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(Ok(true));
    }
    let ip: IpAddr = bare.parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some(match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    })
}

/// `Ok(loopback?)` for an address a node may have, else why not.
fn classify_v4(ip: Ipv4Addr) -> Result<bool, Unusable> {
    if ip.octets()[0] == 0 {
        Err(Unusable::Unspecified)
    } else if ip.is_broadcast() {
        Err(Unusable::Broadcast)
    } else if ip.is_multicast() {
        Err(Unusable::Multicast)
    } else {
        Ok(ip.is_loopback())
    }
}

fn classify_v6(ip: Ipv6Addr) -> Result<bool, Unusable> {
    if ip.is_unspecified() {
        Err(Unusable::Unspecified)
    } else if ip.is_multicast() {
        Err(Unusable::Multicast)
    } else {
        Ok(ip.is_loopback())
    }
}

/// Whether `host:port`, named by a peer as where a node listens (its Hello, a Peers advert, any
/// node reference from the wire), can be a node's address at all.
pub fn check_advertised(host: &str, port: u16) -> Result<(), Unusable> {
    if host.is_empty() {
        return Err(Unusable::NoHost);
    }
    if port == 0 {
        return Err(Unusable::NoPort);
    }
    match kind(host) {
        Some(Err(why)) => Err(why),
        _ => Ok(()),
    }
}

/// Whether a node that listens at `local_host` may dial `host:port` because a peer named it:
/// [`check_advertised`], and no loopback address unless the node listens on loopback itself.
pub fn check_dialable(host: &str, port: u16, local_host: &str) -> Result<(), Unusable> {
    check_advertised(host, port)?;
    let loopback = matches!(kind(host), Some(Ok(true)));
    let local_loopback = matches!(kind(local_host), Some(Ok(true)));
    if loopback && !local_loopback {
        return Err(Unusable::Loopback);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_broadcast_and_multicast_are_never_addresses() {
        for host in ["0.0.0.0", "0.1.2.3", "::", "[::]", "::ffff:0.0.0.0"] {
            assert_eq!(check_advertised(host, 4000), Err(Unusable::Unspecified), "{host}");
        }
        assert_eq!(check_advertised("255.255.255.255", 4000), Err(Unusable::Broadcast));
        for host in ["224.0.0.1", "239.255.255.250", "ff02::1", "[ff05::2]", "::ffff:224.0.0.1"] {
            assert_eq!(check_advertised(host, 4000), Err(Unusable::Multicast), "{host}");
        }
        assert_eq!(check_advertised("203.0.113.7", 0), Err(Unusable::NoPort));
        assert_eq!(check_advertised("", 4000), Err(Unusable::NoHost));
    }

    #[test]
    fn ordinary_addresses_and_names_are_addresses() {
        for host in ["203.0.113.7", "10.0.0.5", "127.0.0.1", "::1", "[2001:db8::1]", "example.org", "localhost", "223.255.255.255", "240.0.0.1"] {
            assert_eq!(check_advertised(host, 4000), Ok(()), "{host}");
        }
    }

    #[test]
    fn a_node_off_loopback_dials_no_loopback_address_on_a_peers_word() {
        for host in ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "node.localhost", "::ffff:127.0.0.1"] {
            assert_eq!(check_dialable(host, 4000, "203.0.113.7"), Err(Unusable::Loopback), "{host}");
            assert_eq!(check_dialable(host, 4000, "node.example.org"), Err(Unusable::Loopback), "{host}");
            assert_eq!(check_dialable(host, 4000, "127.0.0.1"), Ok(()), "{host} from loopback");
            assert_eq!(check_dialable(host, 4000, "localhost"), Ok(()), "{host} from localhost");
        }
        assert_eq!(check_dialable("203.0.113.8", 4000, "203.0.113.7"), Ok(()));
        assert_eq!(check_dialable("203.0.113.8", 4000, "127.0.0.1"), Ok(()), "a loopback node may dial out");
        assert_eq!(check_dialable("0.0.0.0", 4000, "127.0.0.1"), Err(Unusable::Unspecified), "the first rule holds everywhere");
    }
}
