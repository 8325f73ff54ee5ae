//! Worker secrets in the store: each version holds its secrets sealed
//! (one sealed JSON object, or none), so a rollback brings back the
//! secrets that went with the code. The store never sees them in the
//! clear: the control plane seals and opens them (`crate::secrets`).

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Deployment, StoreError, StoreResult, VersionInfo};

/// The version a change of secrets starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsBase {
  /// The version: the one serving the worker alone, or the newest when
  /// nothing serves it.
  pub version: VersionInfo,
  /// Its sealed secrets.
  pub sealed: Option<String>,
  /// Whether it serves the worker now (and the new version will).
  pub deployed: bool,
}

/// What a change of secrets made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsChanged {
  /// The new version: the base's bundle with the new secrets.
  pub version: VersionInfo,
  /// Its deployment, if the base was serving.
  #[serde(skip_serializing_if = "Option::is_none")]
  pub deployment: Option<Deployment>,
}

/// Where workers' sealed secrets are kept.
pub trait SecretStore {
  /// The version a change of `worker`'s secrets starts from. A worker
  /// split between two versions is a conflict: secrets change one version.
  fn secrets_base(&self, worker: String) -> BoxFuture<'_, StoreResult<SecretsBase>>;
  /// Adds a version of `worker` with version `base`'s bundle and `sealed`
  /// as its secrets, and deploys it in `base`'s place if `base` serves
  /// alone. A conflict if `base` is no longer where a change starts (the
  /// worker changed meanwhile).
  fn put_secrets(
    &self,
    worker: String,
    base: u64,
    sealed: Option<String>,
  ) -> BoxFuture<'_, StoreResult<SecretsChanged>>;
  /// The sealed secrets of each of `versions` (worker, number), in order.
  fn sealed_secrets(
    &self,
    versions: Vec<(String, u64)>,
  ) -> BoxFuture<'_, StoreResult<Vec<Option<String>>>>;
}

/// The base for a change of `worker`'s secrets, from what serves it
/// (`active`) and its newest version (`newest`).
pub(super) fn choose_base(
  worker: &str,
  active: Option<&Deployment>,
  newest: Option<u64>,
) -> StoreResult<(u64, bool)> {
  match active.map(|d| d.shares.as_slice()) {
    Some([only]) => Ok((only.version, true)),
    Some([first, second]) => Err(StoreError::Conflict(format!(
      "worker {worker:?} is split between v{} and v{}: deploy one version before changing its secrets",
      first.version, second.version
    ))),
    _ => newest.map(|number| (number, false)).ok_or_else(|| {
      StoreError::NotFound(format!(
        "worker {worker:?} has no version: deploy it before giving it secrets"
      ))
    }),
  }
}

/// A conflict for a change whose base moved on.
pub(super) fn moved_on(worker: &str) -> StoreError {
  StoreError::Conflict(format!(
    "worker {worker:?} changed while its secrets were being changed: try again"
  ))
}
