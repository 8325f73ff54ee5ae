//! Route patterns: which requests a worker serves, by host and path.
//!
//! A pattern is `host/path`:
//! - the host is exact (`api.example.com`), any subdomain of a domain
//!   (`*.example.com`, not the domain itself), or any host (`*`);
//! - the path is exact (`/health`) or a prefix ending in `*` (`/v1/*`); a
//!   pattern with no path means `/*`.
//!
//! When several patterns match a request the most specific wins: an exact
//! host over a subdomain wildcard (the longer domain first) over `*`, then
//! an exact path over a prefix (the longer prefix first). Two routes can
//! only be equally specific and overlap if their patterns are the same, so
//! the one conflict is a pattern claimed by two workers.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad route pattern {pattern:?}: {why}")]
pub struct RouteError {
  /// The pattern as given.
  pub pattern: String,
  /// What is wrong with it.
  pub why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
  Any,
  /// `*.<domain>`: the domain, lowercase.
  Subdomains(String),
  Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PathPattern {
  /// `<prefix>*`: the prefix.
  Prefix(String),
  Exact(String),
}

/// A parsed, normalised route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePattern {
  host: HostPattern,
  path: PathPattern,
}

impl RoutePattern {
  /// Parses `host/path`; hosts are case-insensitive and stored lowercase.
  pub fn parse(pattern: &str) -> Result<Self, RouteError> {
    let bad = |why| RouteError {
      pattern: pattern.to_owned(),
      why,
    };
    if pattern.len() > 512 {
      return Err(bad("longer than 512 bytes"));
    }
    if pattern.contains("://") {
      return Err(bad("leave out the scheme: api.example.com/*"));
    }
    let (host, path) = match pattern.find('/') {
      Some(at) => pattern.split_at(at),
      None => (pattern, "/*"),
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
      HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
      check_host(domain).map_err(bad)?;
      HostPattern::Subdomains(domain.to_owned())
    } else {
      check_host(&host).map_err(bad)?;
      HostPattern::Exact(host)
    };
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
      return Err(bad("the path must not hold spaces or control characters"));
    }
    let path = match path.strip_suffix('*') {
      Some(prefix) if !prefix.contains('*') => PathPattern::Prefix(prefix.to_owned()),
      Some(_) => return Err(bad("only a trailing * is allowed in the path")),
      None if path.contains('*') => return Err(bad("only a trailing * is allowed in the path")),
      None => PathPattern::Exact(path.to_owned()),
    };
    Ok(Self { host, path })
  }

  /// Whether a request to `host` (a port, if any, is ignored) and `path`
  /// matches.
  pub fn matches(&self, host: &str, path: &str) -> bool {
    let host = strip_port(host);
    let host_matches = match &self.host {
      HostPattern::Any => true,
      HostPattern::Exact(exact) => host.eq_ignore_ascii_case(exact),
      HostPattern::Subdomains(domain) => {
        let (host, domain) = (host.as_bytes(), domain.as_bytes());
        host.len() > domain.len() + 1
          && host[host.len() - domain.len() - 1] == b'.'
          && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
      }
    };
    host_matches
      && match &self.path {
        PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        PathPattern::Exact(exact) => path == exact,
      }
  }

  /// How specific the pattern is: of two matching patterns, the greater
  /// wins.
  pub fn specificity(&self) -> (u8, usize, u8, usize) {
    let (host_rank, host_len) = match &self.host {
      HostPattern::Any => (0, 0),
      HostPattern::Subdomains(domain) => (1, domain.len()),
      HostPattern::Exact(host) => (2, host.len()),
    };
    let (path_rank, path_len) = match &self.path {
      PathPattern::Prefix(prefix) => (0, prefix.len()),
      PathPattern::Exact(path) => (1, path.len()),
    };
    (host_rank, host_len, path_rank, path_len)
  }

  /// Orders patterns most specific first, ties broken by text so the order
  /// is total.
  pub fn most_specific_first(a: &Self, b: &Self) -> Ordering {
    b.specificity()
      .cmp(&a.specificity())
      .then_with(|| a.to_string().cmp(&b.to_string()))
  }
}

fn strip_port(host: &str) -> &str {
  match host.rsplit_once(':') {
    Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
    _ => host,
  }
}

fn check_host(host: &str) -> Result<(), &'static str> {
  if host.is_empty() {
    return Err("the host is empty");
  }
  if host.contains('*') {
    return Err("a host wildcard must be * or lead as *.");
  }
  let ok = host.split('.').all(|label| {
    !label.is_empty()
      && label.len() <= 63
      && label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
  });
  if ok {
    Ok(())
  } else {
    Err("the host must be dot-separated letters, digits, - and _")
  }
}

impl fmt::Display for RoutePattern {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &self.host {
      HostPattern::Any => f.write_str("*")?,
      HostPattern::Subdomains(domain) => write!(f, "*.{domain}")?,
      HostPattern::Exact(host) => f.write_str(host)?,
    }
    match &self.path {
      PathPattern::Prefix(prefix) => write!(f, "{prefix}*"),
      PathPattern::Exact(path) => f.write_str(path),
    }
  }
}

impl Serialize for RoutePattern {
  fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(self)
  }
}

impl<'de> Deserialize<'de> for RoutePattern {
  fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
    let text = String::deserialize(deserializer)?;
    RoutePattern::parse(&text).map_err(serde::de::Error::custom)
  }
}
