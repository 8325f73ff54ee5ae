//! The API's authorization gate: every call with every kind of caller
//! (each scope, no token, a malformed header, an unknown token, a spent
//! edge-join token), against an expectation written here, apart from the
//! gate's own table. A call added to the API without an entry in the gate
//! is not served; one added to the gate without an entry here fails the
//! first assertion.

use std::collections::BTreeSet;

use outpost_control::api::gate::ROUTES;

use crate::cluster::{Control, Storage, start_edge};
use crate::util::Backend;

/// What each call needs, as this test expects it: `public`, `any`, a
/// scope's name, or `join` (an unused edge-join token only).
const EXPECTED: &[(&str, &str, &str)] = &[
  ("GET", "health", "public"),
  ("GET", "whoami", "any"),
  ("POST", "workers/*/versions", "deploy"),
  ("GET", "workers/*/versions", "read-only"),
  ("POST", "workers/*/deployments", "deploy"),
  ("GET", "workers/*/deployments", "read-only"),
  ("GET", "workers/*/triggers", "read-only"),
  ("POST", "workers/*/rollback", "deploy"),
  ("DELETE", "workers/*", "deploy"),
  ("GET", "workers/*/tail", "read-only"),
  ("GET", "workers/*/secrets", "read-only"),
  ("POST", "workers/*/secrets", "deploy"),
  ("PUT", "workers/*/secrets/*", "deploy"),
  ("DELETE", "workers/*/secrets/*", "deploy"),
  ("GET", "dispatch-namespaces", "read-only"),
  ("POST", "dispatch-namespaces", "deploy"),
  ("GET", "dispatch-namespaces/*", "read-only"),
  ("DELETE", "dispatch-namespaces/*", "deploy"),
  ("GET", "routes", "read-only"),
  ("PUT", "routes", "deploy"),
  ("DELETE", "routes", "deploy"),
  ("POST", "tokens", "admin"),
  ("POST", "edges/enroll", "join"),
  ("GET", "edges", "read-only"),
  ("DELETE", "edges/*", "admin"),
  ("GET", "state", "read-only"),
  ("POST", "assets/missing", "deploy"),
  ("PUT", "assets/*", "deploy"),
  ("GET", "certificates", "read-only"),
  ("PUT", "certificates", "admin"),
  ("DELETE", "certificates/*", "admin"),
  ("GET", "kv/namespaces", "read-only"),
  ("POST", "kv/namespaces", "kv-write"),
  ("DELETE", "kv/namespaces/*", "kv-write"),
  ("GET", "kv/namespaces/*/keys", "read-only"),
  ("GET", "kv/namespaces/*/values/*", "read-only"),
  ("PUT", "kv/namespaces/*/values/*", "kv-write"),
  ("DELETE", "kv/namespaces/*/values/*", "kv-write"),
  ("PUT", "kv/namespaces/*/bulk", "kv-write"),
  ("POST", "kv/namespaces/*/bulk/delete", "kv-write"),
];

/// Calls on a dispatch namespace's user worker, which the gate decides as
/// the worker calls they are: each needs what that call needs.
const USER_WORKER_CALLS: &[(&str, &str, &str)] = &[
  ("POST", "dispatch-namespaces/*/workers/*/versions", "deploy"),
  (
    "GET",
    "dispatch-namespaces/*/workers/*/versions",
    "read-only",
  ),
  (
    "POST",
    "dispatch-namespaces/*/workers/*/deployments",
    "deploy",
  ),
  (
    "GET",
    "dispatch-namespaces/*/workers/*/deployments",
    "read-only",
  ),
  (
    "GET",
    "dispatch-namespaces/*/workers/*/triggers",
    "read-only",
  ),
  ("POST", "dispatch-namespaces/*/workers/*/rollback", "deploy"),
  ("DELETE", "dispatch-namespaces/*/workers/*", "deploy"),
  ("GET", "dispatch-namespaces/*/workers/*/tail", "read-only"),
  (
    "GET",
    "dispatch-namespaces/*/workers/*/secrets",
    "read-only",
  ),
  ("POST", "dispatch-namespaces/*/workers/*/secrets", "deploy"),
  ("PUT", "dispatch-namespaces/*/workers/*/secrets/*", "deploy"),
  (
    "DELETE",
    "dispatch-namespaces/*/workers/*/secrets/*",
    "deploy",
  ),
];

/// Whether a token of scope `held` may make a call needing `need`.
fn allowed(held: &str, need: &str) -> bool {
  match (held, need) {
    (_, "public" | "any") => true,
    ("edge-join", need) => need == "join",
    (_, "join") => false,
    ("admin", _) => true,
    (_, "read-only") => true,
    (held, need) => held == need,
  }
}

/// A concrete path for a route pattern.
fn sample(pattern: &str) -> String {
  let parts: Vec<&str> = pattern.split('/').collect();
  let filled: Vec<String> = parts
    .iter()
    .enumerate()
    .map(
      |(i, part)| match (*part, i.checked_sub(1).map(|p| parts[p])) {
        ("*", Some("assets")) => "0".repeat(64),
        ("*", Some("namespaces")) => "0123456789abcdef0123456789abcdef".to_owned(),
        ("*", Some("certificates")) => "example.com".to_owned(),
        ("*", Some("edges")) => "edge-0000000000000000".to_owned(),
        ("*", Some("secrets")) => "API_KEY".to_owned(),
        ("*", _) => "w1".to_owned(),
        (part, _) => part.to_owned(),
      },
    )
    .collect();
  filled.join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_admits_exactly_the_scopes_it_should() {
  let table: BTreeSet<(String, String)> = ROUTES
    .iter()
    .map(|(method, pattern, _)| ((*method).to_owned(), (*pattern).to_owned()))
    .collect();
  let expected: BTreeSet<(String, String)> = EXPECTED
    .iter()
    .map(|(method, pattern, _)| ((*method).to_owned(), (*pattern).to_owned()))
    .collect();
  assert_eq!(
    table, expected,
    "the gate's routes and this test's expectations differ"
  );

  let data = tempfile::tempdir().expect("temp dir");
  let storage = Storage::new(Backend::Sqlite, &data.path().join("control")).await;
  let control = Control::start_with(&storage, 0, 0, None);
  // A join token spent by an enrolment: refused like any unknown token.
  let spent = storage.token("edge-join");
  let _edge = start_edge(&control.api, Some(&spent), &data.path().join("edge"));
  let mut callers: Vec<(String, Option<String>, Option<&str>)> = vec![
    (
      "admin".into(),
      Some(format!("Bearer {}", control.admin)),
      Some("admin"),
    ),
    ("none".into(), None, None),
    (
      "malformed".into(),
      Some(format!("Basic {}", control.admin)),
      None,
    ),
    (
      "unknown".into(),
      Some("Bearer opt_not_a_token".into()),
      None,
    ),
    ("spent join".into(), Some(format!("Bearer {spent}")), None),
  ];
  for scope in ["deploy", "kv-write", "read-only", "edge-join"] {
    let token = storage.token(scope);
    callers.push((scope.into(), Some(format!("Bearer {token}")), Some(scope)));
  }

  let client = reqwest::Client::new();
  let mut wrong = Vec::new();
  for (method, pattern, need) in EXPECTED.iter().chain(USER_WORKER_CALLS) {
    let url = format!("{}/{}", control.api, sample(pattern));
    for (who, header, scope) in &callers {
      let mut request = client.request(method.parse().expect("method"), &url);
      if let Some(header) = header {
        request = request.header("authorization", header);
      }
      let status = request
        .send()
        .await
        .expect("the API answers")
        .status()
        .as_u16();
      let want_ok = match scope {
        Some(scope) => allowed(scope, need),
        None => *need == "public",
      };
      let fine = match (want_ok, scope) {
        (true, _) => status != 401 && status != 403 && status < 500,
        (false, None) => status == 401,
        (false, Some(_)) => status == 403,
      };
      if !fine {
        wrong.push(format!("{method} {pattern} as {who}: {status}"));
      }
    }
  }
  assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
