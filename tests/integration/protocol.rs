//! The bundle format and route patterns shared by control plane and edges.

use outpost_protocol::bundle::{MAX_BUNDLE_BYTES, is_sha256_hex};
use outpost_protocol::{Bundle, BundleError, RoutePattern};

fn pattern(text: &str) -> RoutePattern {
  RoutePattern::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

#[test]
fn route_patterns_match_hosts_and_paths() {
  let exact = pattern("API.example.com/*");
  assert_eq!(
    exact.to_string(),
    "api.example.com/*",
    "hosts are normalised to lowercase"
  );
  assert!(exact.matches("api.example.com", "/"));
  assert!(
    exact.matches("api.example.com:8443", "/v1/users"),
    "the port is ignored"
  );
  assert!(exact.matches("API.Example.COM", "/x"));
  assert!(!exact.matches("www.example.com", "/"));

  let subdomains = pattern("*.example.com/v1/*");
  assert!(subdomains.matches("a.example.com", "/v1/x"));
  assert!(subdomains.matches("a.b.example.com", "/v1/"));
  assert!(
    !subdomains.matches("example.com", "/v1/x"),
    "the domain itself is not a subdomain"
  );
  assert!(!subdomains.matches("badexample.com", "/v1/x"));
  assert!(!subdomains.matches("a.example.com", "/v2/x"));

  let path = pattern("example.com/health");
  assert!(path.matches("example.com", "/health"));
  assert!(
    !path.matches("example.com", "/health/more"),
    "a path without * is exact"
  );
  assert_eq!(
    pattern("example.com").to_string(),
    "example.com/*",
    "no path means every path"
  );
  assert!(pattern("*/static/*").matches("anything.test", "/static/a.css"));
}

#[test]
fn the_most_specific_route_sorts_first() {
  let mut patterns = [
    pattern("*/*"),
    pattern("*.example.com/*"),
    pattern("api.example.com/*"),
    pattern("*.api.example.com/*"),
    pattern("api.example.com/v1/*"),
    pattern("api.example.com/v1/health"),
  ];
  patterns.sort_by(RoutePattern::most_specific_first);
  let order: Vec<String> = patterns.iter().map(ToString::to_string).collect();
  assert_eq!(
    order,
    [
      "api.example.com/v1/health",
      "api.example.com/v1/*",
      "api.example.com/*",
      "*.api.example.com/*",
      "*.example.com/*",
      "*/*",
    ]
  );
}

#[test]
fn malformed_route_patterns_are_refused_with_the_reason() {
  for (text, why) in [
    ("https://example.com/*", "scheme"),
    ("api.*.com/*", "wildcard"),
    ("example.com/a*b", "trailing *"),
    ("exa mple.com/*", "letters"),
    ("*./x", "empty"),
    ("/only-a-path", "empty"),
  ] {
    let err = RoutePattern::parse(text).expect_err(text);
    assert!(err.to_string().contains(why), "{text}: {err}");
  }
}

fn bundle_json(main: &str, modules: &[(&str, &str)]) -> String {
  let modules: serde_json::Map<String, serde_json::Value> = modules
    .iter()
    .map(|(path, source)| ((*path).to_owned(), (*source).into()))
    .collect();
  serde_json::json!({ "main": main, "modules": modules }).to_string()
}

#[test]
fn a_bundle_hashes_the_same_however_its_json_is_written() {
  let a = r#"{"main":"worker.js","modules":{"worker.js":"export default {}","lib/util.js":"export const x = 1"},"vars":{"B":"2","A":"1"}}"#;
  let b = r#"{ "vars": {"A":"1","B":"2"}, "modules": {"lib/util.js":"export const x = 1", "worker.js":"export default {}"}, "main": "worker.js", "limits": {} }"#;
  let (a, b) = (
    Bundle::from_json(a.as_bytes()).expect("a"),
    Bundle::from_json(b.as_bytes()).expect("b"),
  );
  assert_eq!(a.hash(), b.hash());
  assert!(is_sha256_hex(&a.hash()));
  let stored = a.canonical_bytes();
  assert_eq!(
    Bundle::from_stored(&stored, &a.hash()).expect("round trip"),
    a
  );

  let mut changed = a.clone();
  changed.vars.insert("A".into(), "changed".into());
  assert_ne!(changed.hash(), a.hash(), "any change is a new identity");
}

#[test]
fn a_tampered_bundle_does_not_pass_as_its_hash() {
  let bundle = Bundle::from_json(bundle_json("w.js", &[("w.js", "export default {}")]).as_bytes())
    .expect("valid");
  let mut bytes = bundle.canonical_bytes();
  let at = bytes.iter().position(|&b| b == b'{').expect("a brace") + 1;
  bytes.insert(at, b' ');
  match Bundle::from_stored(&bytes, &bundle.hash()) {
    Err(BundleError::HashMismatch { expected, .. }) => assert_eq!(expected, bundle.hash()),
    other => panic!("expected a hash mismatch, got {other:?}"),
  }
}

#[test]
fn bad_bundles_are_refused_with_the_reason() {
  let cases = [
    ("not json".to_owned(), "malformed"),
    (
      r#"{"main":"w.js","modules":{}}"#.to_owned(),
      "at least one module",
    ),
    (bundle_json("../w.js", &[("../w.js", "x")]), "segments"),
    (bundle_json("/w.js", &[("/w.js", "x")]), "relative"),
    (bundle_json("a/./w.js", &[("a/./w.js", "x")]), "segments"),
    (bundle_json("w.txt", &[("w.txt", "x")]), "must end in"),
    (bundle_json("c:w.js", &[("c:w.js", "x")]), "relative"),
    (
      bundle_json("main.js", &[("w.js", "x")]),
      "not in the bundle",
    ),
    (
      r#"{"main":"w.js","modules":{"w.js":"x"},"vars":{"1bad":"x"}}"#.to_owned(),
      "bad var name",
    ),
    (
      r#"{"main":"w.js","modules":{"w.js":"x"},"extra":1}"#.to_owned(),
      "unknown field",
    ),
  ];
  for (json, why) in cases {
    let err = Bundle::from_json(json.as_bytes()).expect_err(&json);
    assert!(err.to_string().contains(why), "{json}: {err}");
  }
  let huge = "x".repeat(MAX_BUNDLE_BYTES);
  let err =
    Bundle::from_json(bundle_json("w.js", &[("w.js", &huge)]).as_bytes()).expect_err("too large");
  assert!(matches!(err, BundleError::TooLarge(_)), "{err}");
}
