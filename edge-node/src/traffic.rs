//! What the servers count as requests go by, for `/metrics`: requests by
//! protocol and status class, the latency to the response head, the KV
//! cache's hits and misses, and the sync connection's state. Lock-free
//! counters, shared by every server of a node.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::admission::ConnectionCaps;
use crate::kv::EdgeKv;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The protocols a request can arrive over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
  /// HTTP/1.0 or 1.1.
  Http1,
  /// HTTP/2, cleartext or TLS.
  Http2,
  /// HTTP/3.
  Http3,
}

impl Protocol {
  /// Every protocol, in label order.
  pub const ALL: [Protocol; 3] = [Protocol::Http1, Protocol::Http2, Protocol::Http3];

  /// The protocol of a request of `version`.
  pub fn of(version: http::Version) -> Self {
    match version {
      http::Version::HTTP_2 => Protocol::Http2,
      http::Version::HTTP_3 => Protocol::Http3,
      _ => Protocol::Http1,
    }
  }

  /// The label value.
  pub fn label(self) -> &'static str {
    match self {
      Protocol::Http1 => "http1",
      Protocol::Http2 => "http2",
      Protocol::Http3 => "http3",
    }
  }
}

/// Whether the node holds its sync connection, and the epoch it serves.
#[derive(Debug, Default)]
pub struct SyncStatus {
  /// Whether the control plane is connected now.
  pub connected: AtomicBool,
  /// The epoch served.
  pub epoch: AtomicU64,
  /// The newest epoch the control plane announced.
  pub announced: AtomicU64,
}

/// The node's traffic counters.
#[derive(Debug, Default)]
pub struct Traffic {
  /// Requests by protocol (`Protocol::ALL` order) and status class (1xx
  /// to 5xx).
  requests: [[AtomicU64; 5]; 3],
  latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
  latency_count: AtomicU64,
  latency_micros: AtomicU64,
  kv: OnceLock<EdgeKv>,
  sync: OnceLock<Arc<SyncStatus>>,
  connections: OnceLock<Arc<ConnectionCaps>>,
}

impl Traffic {
  /// Counts a request answered with `status` over `protocol`, its head
  /// `latency` after it arrived.
  pub fn record(&self, protocol: Protocol, status: http::StatusCode, latency: Duration) {
    let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
    let row = Protocol::ALL
      .iter()
      .position(|p| *p == protocol)
      .unwrap_or(0);
    self.requests[row][class].fetch_add(1, Ordering::Relaxed);
    let seconds = latency.as_secs_f64();
    if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
      self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }
    self.latency_count.fetch_add(1, Ordering::Relaxed);
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    self.latency_micros.fetch_add(micros, Ordering::Relaxed);
  }

  /// Reports this KV cache's hits and misses too.
  pub fn watch_kv(&self, kv: EdgeKv) {
    let _ = self.kv.set(kv);
  }

  /// Reports these connection counts too.
  pub fn watch_connections(&self, caps: Arc<ConnectionCaps>) {
    let _ = self.connections.set(caps);
  }

  /// Reports this sync connection's state too.
  pub fn watch_sync(&self, sync: Arc<SyncStatus>) {
    let _ = self.sync.set(sync);
  }

  /// Appends the counters in the Prometheus text format.
  pub fn render(&self, out: &mut String) {
    use std::fmt::Write;
    let name = "outpost_requests_total";
    let _ = writeln!(
      out,
      "# HELP {name} Requests answered, by protocol and status class.\n# TYPE {name} counter"
    );
    for (row, protocol) in Protocol::ALL.iter().enumerate() {
      for (class, count) in self.requests[row].iter().enumerate() {
        let _ = writeln!(
          out,
          "{name}{{protocol=\"{}\",status=\"{}xx\"}} {}",
          protocol.label(),
          class + 1,
          count.load(Ordering::Relaxed)
        );
      }
    }
    let name = "outpost_request_duration_seconds";
    let _ = writeln!(
      out,
      "# HELP {name} Time from a request's arrival to its response head.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
      cumulative += count.load(Ordering::Relaxed);
      let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let count = self.latency_count.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    if let Some(kv) = self.kv.get() {
      let counters = kv.counters();
      let name = "outpost_kv_cache_total";
      let _ = writeln!(
        out,
        "# HELP {name} KV reads by outcome: answered from the node's cache, or fetched.\n# TYPE {name} counter"
      );
      for (result, value) in [("hit", &counters.hits), ("miss", &counters.misses)] {
        let _ = writeln!(
          out,
          "{name}{{result=\"{result}\"}} {}",
          value.load(Ordering::Relaxed)
        );
      }
      let name = "outpost_kv_fetches_total";
      let _ = writeln!(
        out,
        "# HELP {name} KV reads sent to the control plane (concurrent misses of a key share one).\n# TYPE {name} counter\n{name} {}",
        counters.fetches.load(Ordering::Relaxed)
      );
    }
    if let Some(caps) = self.connections.get() {
      let name = "outpost_connections_open";
      let _ = writeln!(
        out,
        "# HELP {name} Client connections open (TCP and QUIC).\n# TYPE {name} gauge\n{name} {}",
        caps.open()
      );
      let name = "outpost_connections_refused_total";
      let _ = writeln!(
        out,
        "# HELP {name} Client connections refused at a connection cap.\n# TYPE {name} counter\n{name} {}",
        caps.refused()
      );
    }
    if let Some(sync) = self.sync.get() {
      let epoch = sync.epoch.load(Ordering::Relaxed);
      let lag = sync.announced.load(Ordering::Relaxed).saturating_sub(epoch);
      for (name, help, value) in [
        (
          "outpost_sync_connected",
          "1 while the control plane is connected.",
          u64::from(sync.connected.load(Ordering::Relaxed)),
        ),
        ("outpost_sync_epoch", "The epoch this node serves.", epoch),
        (
          "outpost_sync_lag_epochs",
          "Epochs the control plane has announced that this node does not serve yet.",
          lag,
        ),
      ] {
        let _ = writeln!(
          out,
          "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
      }
    }
  }
}
