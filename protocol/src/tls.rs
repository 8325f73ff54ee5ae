//! What the control plane and edges both read from TLS certificates: the
//! host names a certificate serves, and whether a name covers a host.

/// What a leaf certificate (DER) serves: the DNS names of its subject
/// alternative names, or its common name when it has none, lowercase; and
/// when it expires, in seconds since the Unix epoch.
pub fn served_names(leaf: &[u8]) -> Result<(Vec<String>, i64), String> {
  use x509_parser::extensions::GeneralName;
  let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
  let mut names = Vec::new();
  if let Ok(Some(san)) = cert.subject_alternative_name() {
    for name in &san.value.general_names {
      if let GeneralName::DNSName(dns) = name {
        names.push(dns.to_ascii_lowercase());
      }
    }
  }
  if names.is_empty() {
    names.extend(
      cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase),
    );
  }
  Ok((names, cert.validity().not_after.timestamp()))
}

/// Whether certificate name `name` (perhaps `*.example.com`, one label
/// deep) covers `host`.
pub fn covers(name: &str, host: &str) -> bool {
  if name == host {
    return true;
  }
  match (name.strip_prefix("*."), host.split_once('.')) {
    (Some(parent), Some((_, rest))) => parent == rest,
    _ => false,
  }
}
