//! The one authorization gate: what every API call needs, from its method
//! and route alone, decided before any handler runs. A route missing from
//! [`ROUTES`] is not served at all, so a new call cannot slip through
//! without a decision. A call on a dispatch namespace's user worker
//! (`dispatch-namespaces/*/workers/*/…`) reaches the gate as the worker
//! call it is (`workers/*/…`), and needs what that needs.

use http::{Method, StatusCode};

use super::ApiError;
use crate::store::Scope;

/// What a call needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
  /// Nothing: no token is read.
  Nothing,
  /// Any valid token, of any scope.
  AnyToken,
  /// A token whose scope allows this one ([`Scope::allows`]).
  Scope(Scope),
  /// An unused edge-join token and nothing else (enrolment spends it).
  JoinToken,
}

/// Every call of the API: method, route under `/v1` (`*` stands for one
/// segment), and what it needs.
pub const ROUTES: &[(&str, &str, Need)] = &[
  ("GET", "health", Need::Nothing),
  ("GET", "whoami", Need::AnyToken),
  ("POST", "workers/*/versions", Need::Scope(Scope::Deploy)),
  ("GET", "workers/*/versions", Need::Scope(Scope::ReadOnly)),
  ("POST", "workers/*/deployments", Need::Scope(Scope::Deploy)),
  ("GET", "workers/*/deployments", Need::Scope(Scope::ReadOnly)),
  ("GET", "workers/*/triggers", Need::Scope(Scope::ReadOnly)),
  ("POST", "workers/*/rollback", Need::Scope(Scope::Deploy)),
  ("DELETE", "workers/*", Need::Scope(Scope::Deploy)),
  ("GET", "workers/*/tail", Need::Scope(Scope::ReadOnly)),
  ("GET", "workers/*/secrets", Need::Scope(Scope::ReadOnly)),
  ("POST", "workers/*/secrets", Need::Scope(Scope::Deploy)),
  ("PUT", "workers/*/secrets/*", Need::Scope(Scope::Deploy)),
  ("DELETE", "workers/*/secrets/*", Need::Scope(Scope::Deploy)),
  ("GET", "dispatch-namespaces", Need::Scope(Scope::ReadOnly)),
  ("POST", "dispatch-namespaces", Need::Scope(Scope::Deploy)),
  ("GET", "dispatch-namespaces/*", Need::Scope(Scope::ReadOnly)),
  (
    "DELETE",
    "dispatch-namespaces/*",
    Need::Scope(Scope::Deploy),
  ),
  ("GET", "routes", Need::Scope(Scope::ReadOnly)),
  ("PUT", "routes", Need::Scope(Scope::Deploy)),
  ("DELETE", "routes", Need::Scope(Scope::Deploy)),
  ("POST", "tokens", Need::Scope(Scope::Admin)),
  ("POST", "edges/enroll", Need::JoinToken),
  ("GET", "edges", Need::Scope(Scope::ReadOnly)),
  ("DELETE", "edges/*", Need::Scope(Scope::Admin)),
  ("GET", "state", Need::Scope(Scope::ReadOnly)),
  ("POST", "assets/missing", Need::Scope(Scope::Deploy)),
  ("PUT", "assets/*", Need::Scope(Scope::Deploy)),
  ("GET", "certificates", Need::Scope(Scope::ReadOnly)),
  ("PUT", "certificates", Need::Scope(Scope::Admin)),
  ("DELETE", "certificates/*", Need::Scope(Scope::Admin)),
  ("GET", "kv/namespaces", Need::Scope(Scope::ReadOnly)),
  ("POST", "kv/namespaces", Need::Scope(Scope::KvWrite)),
  ("DELETE", "kv/namespaces/*", Need::Scope(Scope::KvWrite)),
  ("GET", "kv/namespaces/*/keys", Need::Scope(Scope::ReadOnly)),
  (
    "GET",
    "kv/namespaces/*/values/*",
    Need::Scope(Scope::ReadOnly),
  ),
  (
    "PUT",
    "kv/namespaces/*/values/*",
    Need::Scope(Scope::KvWrite),
  ),
  (
    "DELETE",
    "kv/namespaces/*/values/*",
    Need::Scope(Scope::KvWrite),
  ),
  ("PUT", "kv/namespaces/*/bulk", Need::Scope(Scope::KvWrite)),
  (
    "POST",
    "kv/namespaces/*/bulk/delete",
    Need::Scope(Scope::KvWrite),
  ),
];

fn matches(pattern: &str, segments: &[&str]) -> bool {
  let parts: Vec<&str> = pattern.split('/').collect();
  parts.len() == segments.len()
    && parts
      .iter()
      .zip(segments)
      .all(|(part, segment)| *part == *segment || (*part == "*" && !segment.is_empty()))
}

/// What the call `method` on `segments` (the path after `/v1`) needs; a
/// 404 for a call the API does not have.
pub(super) fn need(method: &Method, segments: &[&str]) -> Result<Need, ApiError> {
  ROUTES
    .iter()
    .find(|(m, pattern, _)| *m == method.as_str() && matches(pattern, segments))
    .map(|(_, _, need)| *need)
    .ok_or_else(|| ApiError::not_found(format!("no API call {method} /v1/{}", segments.join("/"))))
}

/// Whether a token of scope `held` may make a call that needs `need`.
pub(super) fn admit(need: Need, held: Scope) -> Result<(), ApiError> {
  let forbidden = |what: &str| {
    Err(ApiError::new(
      StatusCode::FORBIDDEN,
      "forbidden",
      format!(
        "this needs {what}; this token has the {} scope",
        held.name()
      ),
    ))
  };
  match need {
    Need::Nothing | Need::AnyToken => Ok(()),
    Need::JoinToken if held == Scope::EdgeJoin => Ok(()),
    Need::JoinToken => forbidden("an edge-join token"),
    Need::Scope(needed) if held.allows(needed) => Ok(()),
    Need::Scope(needed) => forbidden(&format!("a token with the {} scope", needed.name())),
  }
}
