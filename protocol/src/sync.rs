//! The sync connection between an edge node and the control plane.
//!
//! One QUIC connection per node, mutual TLS. The node opens every stream
//! and names its purpose in the first frame ([`StreamOpen`]):
//! - one control stream, opened with the epoch the node has: the control
//!   plane sends the [`State`] at its current epoch if that is newer, and
//!   again after every change; the node answers each with
//!   [`EdgeMessage::Ack`] once it serves it;
//! - a stream per bundle (or static asset) the node lacks, answered with
//!   [`BundleReply`] and then the bytes, which the node checks against
//!   the hash;
//! - a stream per KV call a node's cache cannot answer ([`KvRequest`]),
//!   answered with a [`KvReply`]. Values travel as a raw frame after the
//!   request or reply that announces them. After a KV write the control
//!   plane tells every other node on its control stream
//!   ([`ControlMessage::KvInvalidate`]);
//! - while anyone tails a worker ([`ControlMessage::Tail`]), one logs
//!   stream ([`StreamOpen::Logs`]) of `tail::TailBatch` frames;
//! - a cron firing the control plane hands the node
//!   ([`ControlMessage::Fire`]) is answered, once run, on a stream of its
//!   own ([`StreamOpen::Fired`]), so a result outlives the connection it
//!   was asked on.
//!
//! Every message is a frame: a 4-byte big-endian length, then JSON (or the
//! raw bundle bytes).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::bundle::MAX_BUNDLE_BYTES;
use crate::kv::{KvError, KvListOptions, KvListPage};
use crate::route::RoutePattern;

/// The largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = MAX_BUNDLE_BYTES + 1024;
/// The server name the control plane's sync certificate is issued for.
pub const SYNC_SERVER_NAME: &str = "outpost-control";
/// The ALPN protocol of the sync connection.
pub const SYNC_ALPN: &[u8] = b"outpost-sync/1";

/// One version serving a share of a worker's requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedVersion {
  /// The version's number within its worker (v1, v2, ...).
  pub number: u64,
  /// The bundle's hash.
  pub hash: String,
  /// Its share of the requests, 1 to 100; a deployment's shares sum to 100.
  pub percent: u8,
  /// Its secrets, bound into `env` beside the bundle's vars (in the clear
  /// only inside the mutual-TLS sync connection and the edge's 0600 state
  /// file; sealed in the control plane's store).
  #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
  pub secrets: BTreeMap<String, String>,
}

/// A worker's active deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerDeployment {
  /// The worker's name.
  pub worker: String,
  /// The versions serving it, one or two.
  pub versions: Vec<DeployedVersion>,
}

/// A route to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
  /// Which requests.
  pub pattern: RoutePattern,
  /// The worker that serves them.
  pub worker: String,
}

/// Everything an edge node serves, as of one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
  /// Counts changes to deployments and routes; never goes back.
  pub epoch: u64,
  /// Every worker with an active deployment.
  pub workers: Vec<WorkerDeployment>,
  /// Every route.
  pub routes: Vec<Route>,
  /// TLS certificates edges serve by SNI, besides their own files.
  #[serde(default, skip_serializing_if = "Vec::is_empty")]
  pub certificates: Vec<PushedCertificate>,
}

/// A TLS certificate the control plane pushes to edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedCertificate {
  /// The host name it was added for.
  pub host: String,
  /// The certificate chain, PEM, leaf first.
  pub cert_pem: String,
  /// Its private key, PEM (in the clear only inside the mutual-TLS sync
  /// connection and the edge's 0600 state file).
  pub key_pem: String,
}

/// The first frame of every stream, from the edge node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamOpen {
  /// The control stream; the node serves `epoch` (0 for nothing yet).
  Control {
    /// The node's epoch.
    epoch: u64,
  },
  /// A bundle stream.
  Bundle {
    /// The hash of the bundle wanted.
    hash: String,
  },
  /// An asset stream: answered as a bundle stream is.
  Asset {
    /// The sha256 of the asset wanted.
    hash: String,
  },
  /// A KV call.
  Kv {
    /// What is asked.
    request: KvRequest,
  },
  /// The node's log stream: [`crate::tail::TailBatch`] frames follow, for
  /// as long as the connection lasts.
  Logs,
  /// How a firing the node was handed went; nothing follows.
  Fired {
    /// The result.
    result: FiringResult,
  },
}

/// One cron firing: run a worker version's `scheduled()` for `cron` at
/// `scheduled_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Firing {
  /// The worker.
  pub worker: String,
  /// The version whose handler runs.
  pub version: u64,
  /// The trigger's pattern.
  pub cron: String,
  /// The time it is scheduled for, in milliseconds since the Unix epoch.
  pub scheduled_ms: u64,
}

impl Firing {
  /// Names the firing across the cluster: the same trigger at the same
  /// time is the same firing, whichever version or node runs it.
  pub fn id(&self) -> String {
    format!("{}|{}|{}", self.worker, self.cron, self.scheduled_ms)
  }
}

/// What running a [`Firing`] came to on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringResult {
  /// The firing run.
  pub firing: Firing,
  /// The handler completed without throwing.
  pub ok: bool,
  /// How long it ran, in milliseconds.
  pub duration_ms: u64,
  /// How long after its scheduled time it started, in milliseconds, by
  /// the node's clock.
  pub delay_ms: u64,
}

/// A KV call from an edge node, on a stream of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KvRequest {
  /// Read a key.
  Get {
    /// The namespace id.
    namespace: String,
    /// The key.
    key: String,
  },
  /// Write a key; the value follows as one raw frame.
  Put {
    /// The namespace id.
    namespace: String,
    /// The key.
    key: String,
    /// The metadata, as JSON text.
    metadata: Option<String>,
    /// When it expires, in seconds since the Unix epoch.
    expiration: Option<u64>,
  },
  /// Delete a key.
  Delete {
    /// The namespace id.
    namespace: String,
    /// The key.
    key: String,
  },
  /// List keys.
  List {
    /// The namespace id.
    namespace: String,
    /// Prefix, limit and cursor.
    options: KvListOptions,
  },
}

/// The control plane's answer to a [`KvRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KvReply {
  /// The key exists; its value follows as one raw frame.
  Found {
    /// The metadata, as JSON text.
    metadata: Option<String>,
    /// When it expires, in seconds since the Unix epoch.
    expiration: Option<u64>,
  },
  /// The key does not exist (or has expired).
  NotFound,
  /// The write was stored.
  Done,
  /// A list page.
  Page(KvListPage),
  /// The call failed.
  Failed {
    /// Why.
    error: KvError,
  },
}

/// From the edge node on its control stream, after [`StreamOpen::Control`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EdgeMessage {
  /// The node now serves `epoch`.
  Ack {
    /// The epoch applied.
    epoch: u64,
  },
}

/// From the control plane on a node's control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
  /// The state at the control plane's current epoch.
  State(State),
  /// KV keys changed: drop them from the cache.
  KvInvalidate {
    /// The namespace id.
    namespace: String,
    /// The keys; `None` for every key of the namespace.
    keys: Option<Vec<String>>,
  },
  /// Too many KV changes to tell: drop the whole KV cache.
  KvFlush,
  /// The workers someone tails now (none: send no logs).
  Tail {
    /// Worker names.
    workers: Vec<String>,
  },
  /// Run this firing and answer with [`StreamOpen::Fired`]; a firing
  /// handed again (after a reconnect) is answered without running twice.
  Fire(Firing),
}

/// The control plane's answer on a bundle stream, before the bundle's bytes
/// (if found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BundleReply {
  /// The bundle's bytes follow as one raw frame.
  Found,
  /// No bundle has that hash.
  NotFound,
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
  /// The stream failed.
  #[error("sync stream: {0}")]
  Io(#[from] std::io::Error),
  /// A frame longer than [`MAX_FRAME_BYTES`].
  #[error("sync frame of {0} bytes is over the limit")]
  TooLarge(usize),
  /// A frame that is not the JSON expected.
  #[error("malformed sync frame: {0}")]
  Malformed(#[from] serde_json::Error),
}

/// Writes `message` as one JSON frame.
pub async fn write_frame<W, T>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
  W: AsyncWrite + Unpin,
  T: Serialize,
{
  write_raw(writer, &serde_json::to_vec(message)?).await
}

/// Writes `bytes` as one raw frame.
pub async fn write_raw<W: AsyncWrite + Unpin>(
  writer: &mut W,
  bytes: &[u8],
) -> Result<(), FrameError> {
  if bytes.len() > MAX_FRAME_BYTES {
    return Err(FrameError::TooLarge(bytes.len()));
  }
  // Checked just above: the length fits in 32 bits.
  let length = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge(bytes.len()))?;
  writer.write_all(&length.to_be_bytes()).await?;
  writer.write_all(bytes).await?;
  Ok(())
}

/// Reads one JSON frame; `None` if the stream ended cleanly before it.
pub async fn read_frame<R, T>(reader: &mut R) -> Result<Option<T>, FrameError>
where
  R: AsyncRead + Unpin,
  T: DeserializeOwned,
{
  match read_raw(reader).await? {
    Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
    None => Ok(None),
  }
}

/// Reads one raw frame; `None` if the stream ended cleanly before it.
pub async fn read_raw<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
  let mut length = [0u8; 4];
  match reader.read_exact(&mut length).await {
    Ok(_) => {}
    Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
    Err(err) => return Err(err.into()),
  }
  let length = u32::from_be_bytes(length) as usize;
  if length > MAX_FRAME_BYTES {
    return Err(FrameError::TooLarge(length));
  }
  let mut bytes = vec![0; length];
  reader.read_exact(&mut bytes).await?;
  Ok(Some(bytes))
}
