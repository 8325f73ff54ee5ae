//! Which addresses a worker's outbound requests may reach.
//!
//! By default only public addresses: loopback, private, link-local, CGNAT,
//! multicast, documentation and other special-purpose ranges are refused,
//! for IPv4 and IPv6 alike (IPv4 addresses embedded in IPv6 count as the
//! IPv4 address). An allow-list opens host names or address ranges. The
//! check runs on the address actually connected to, after DNS, on every hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An allow-list entry that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
  "{entry:?} is not an outbound allow-list entry: use a host name (api.internal, *.corp.example), \
   an address (10.0.0.5, ::1) or a range (10.0.0.0/8, fd00::/8); {reason}"
)]
pub struct PolicyError {
  entry: String,
  reason: &'static str,
}

/// An address range, as `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpRange {
  base: IpAddr,
  prefix: u8,
}

impl IpRange {
  fn contains(&self, ip: IpAddr) -> bool {
    match (self.base, ip) {
      (IpAddr::V4(base), IpAddr::V4(ip)) => same_prefix(
        u32::from(base).into(),
        u32::from(ip).into(),
        self.prefix,
        32,
      ),
      (IpAddr::V6(base), IpAddr::V6(ip)) => {
        same_prefix(u128::from(base), u128::from(ip), self.prefix, 128)
      }
      // Addresses are checked in canonical form: an IPv6 range (written
      // as ::ffff:10.0.0.0/104, say) holds an IPv4 one as its mapped form.
      (IpAddr::V6(base), IpAddr::V4(ip)) => same_prefix(
        u128::from(base),
        u128::from(ip.to_ipv6_mapped()),
        self.prefix,
        128,
      ),
      (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
  }
}

/// Whether `a` and `b`, numbers `bits` wide, agree in their top `prefix` bits.
fn same_prefix(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
  let ignored = u32::from(bits - prefix.min(bits));
  a.checked_shr(ignored).unwrap_or(0) == b.checked_shr(ignored).unwrap_or(0)
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
  /// A host name, matched exactly (lowercase, no trailing dot).
  Host(String),
  /// `*.suffix`: every name below `suffix` (not `suffix` itself).
  Subdomains(String),
  /// Addresses in a range.
  Range(IpRange),
}

/// A worker's outbound address policy: public addresses, plus what its
/// allow-list opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
  allowed: Vec<Allowed>,
}

/// Why an address may not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
  /// The refused address.
  pub ip: IpAddr,
  /// What kind of address it is ("loopback", "private", ...).
  pub kind: &'static str,
}

/// The end of every refusal's message.
pub const REFUSAL_HINT: &str =
  "which workers may not reach unless the outbound allow-list opens it";

impl fmt::Display for Refusal {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{} is a {} address, {REFUSAL_HINT}", self.ip, self.kind)
  }
}

impl OutboundPolicy {
  /// The policy for `entries`: host names, `*.`-prefixed domains,
  /// addresses and `address/prefix` ranges.
  pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, PolicyError> {
    let allowed = entries
      .iter()
      .map(|entry| parse_entry(entry.as_ref()))
      .collect::<Result<_, _>>()?;
    Ok(Self { allowed })
  }

  /// What `outpost dev` allows on top of a worker's own list: the machine
  /// it runs on.
  pub fn localhost() -> Self {
    Self::parse(&["localhost", "127.0.0.0/8", "::1"]).unwrap_or_default()
  }

  /// This policy with `other`'s entries added.
  pub fn merged(mut self, other: &OutboundPolicy) -> Self {
    for entry in &other.allowed {
      if !self.allowed.contains(entry) {
        self.allowed.push(entry.clone());
      }
    }
    self
  }

  /// Whether the allow-list names `host`, in which case every address it
  /// resolves to may be reached.
  pub fn allows_host(&self, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    self.allowed.iter().any(|entry| match entry {
      Allowed::Host(name) => *name == host,
      Allowed::Subdomains(suffix) => host
        .strip_suffix(suffix.as_str())
        .is_some_and(|below| !below.is_empty()),
      Allowed::Range(_) => false,
    })
  }

  /// Checks one address: public addresses pass, and so do those in an
  /// allowed range.
  pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
    let ip = ip.to_canonical();
    let Some(kind) = special_purpose(ip) else {
      return Ok(());
    };
    let opened = self.allowed.iter().any(|entry| match entry {
      Allowed::Range(range) => range.contains(ip),
      _ => false,
    });
    if opened {
      Ok(())
    } else {
      Err(Refusal { ip, kind })
    }
  }
}

fn parse_entry(entry: &str) -> Result<Allowed, PolicyError> {
  let fail = |reason| PolicyError {
    entry: entry.to_owned(),
    reason,
  };
  let trimmed = entry.trim();
  if trimmed.is_empty() {
    return Err(fail("it is empty"));
  }
  if let Some((address, prefix)) = trimmed.split_once('/') {
    let base = parse_ip(address).ok_or_else(|| fail("the part before '/' is not an address"))?;
    let bits = if base.is_ipv4() { 32 } else { 128 };
    let prefix = prefix
      .parse::<u8>()
      .ok()
      .filter(|p| *p <= bits)
      .ok_or_else(|| fail("the prefix length is out of range"))?;
    return Ok(Allowed::Range(IpRange { base, prefix }));
  }
  if let Some(ip) = parse_ip(trimmed) {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    return Ok(Allowed::Range(IpRange { base: ip, prefix }));
  }
  let host = trimmed.trim_end_matches('.').to_ascii_lowercase();
  let (name, wildcard) = match host.strip_prefix("*.") {
    Some(suffix) => (suffix.to_owned(), true),
    None => (host, false),
  };
  let valid_label = |label: &str| {
    !label.is_empty()
      && label.len() <= 63
      && label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
  };
  if name.len() > 253 || !name.split('.').all(valid_label) {
    return Err(fail("it is not a valid host name"));
  }
  Ok(if wildcard {
    Allowed::Subdomains(format!(".{name}"))
  } else {
    Allowed::Host(name)
  })
}

/// An address, IPv6 ones optionally in brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
  let text = text
    .strip_prefix('[')
    .and_then(|t| t.strip_suffix(']'))
    .unwrap_or(text);
  text.parse().ok()
}

/// What kind of special-purpose address `ip` is, or `None` for a public one.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
  match ip {
    IpAddr::V4(ip) => special_purpose_v4(ip),
    IpAddr::V6(ip) => special_purpose_v6(ip),
  }
}

fn special_purpose_v4(ip: Ipv4Addr) -> Option<&'static str> {
  let [a, b, c, _] = ip.octets();
  Some(match (a, b, c) {
    (0, ..) => "\"this network\"",
    (127, ..) => "loopback",
    (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
    (100, 64..=127, _) => "shared (CGNAT)",
    (169, 254, _) => "link-local",
    (192, 0, 0) => "IETF protocol",
    (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
    (198, 18..=19, _) => "benchmarking",
    (192, 88, 99) => "6to4 relay",
    (224..=239, ..) => "multicast",
    (240..=255, ..) => "reserved",
    _ => return None,
  })
}

fn special_purpose_v6(ip: Ipv6Addr) -> Option<&'static str> {
  if let Some(v4) = embedded_v4(ip) {
    return special_purpose_v4(v4);
  }
  let segments = ip.segments();
  Some(match segments {
    [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
    [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
    [0, ..] => "reserved",
    [0x100, 0, 0, 0, ..] => "discard-only",
    [0x2001, 0xdb8, ..] => "documentation",
    [s, ..] if s & 0xfe00 == 0xfc00 => "unique local (private)",
    [s, ..] if s & 0xffc0 == 0xfe80 => "link-local",
    [s, ..] if s & 0xffc0 == 0xfec0 => "site-local",
    [s, ..] if s & 0xff00 == 0xff00 => "multicast",
    _ => return None,
  })
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped, NAT64 (64:ff9b::/96)
/// and 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
  let s = ip.segments();
  let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
  match s {
    [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
    [0x2002, hi, lo, ..] => Some(from(hi, lo)),
    _ => None,
  }
}
