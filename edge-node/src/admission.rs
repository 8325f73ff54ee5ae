//! Which connections a node keeps: caps on all open connections and on
//! those from one client, and the idle watchdog that closes a connection
//! which has not started a request in time. Together with hyper's
//! header-read timeout they keep a slowloris, or a client hoarding idle
//! connections, from starving everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Caps on the connections a node holds open, over all its servers
/// (HTTP, HTTPS and HTTP/3 share one set of counts).
#[derive(Debug)]
pub struct ConnectionCaps {
  max_total: usize,
  max_per_client: usize,
  /// Open connections by client ([`client_of`]); the total is their sum.
  open: Mutex<HashMap<IpAddr, usize>>,
  total: AtomicUsize,
  refused: AtomicU64,
}

impl Default for ConnectionCaps {
  fn default() -> Self {
    Self::new(16_384, 1_024)
  }
}

/// The client a peer address counts against: the address itself for IPv4,
/// the /64 for IPv6, since one host is routinely handed a whole /64.
fn client_of(ip: IpAddr) -> IpAddr {
  match ip {
    IpAddr::V4(_) => ip,
    IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
      Some(v4) => IpAddr::V4(v4),
      None => {
        let mut segments = v6.segments();
        segments[4..].fill(0);
        IpAddr::V6(segments.into())
      }
    },
  }
}

impl ConnectionCaps {
  /// At most `max_total` connections open at once, and `max_per_client`
  /// from one client (an IPv4 address or an IPv6 /64).
  pub fn new(max_total: usize, max_per_client: usize) -> Self {
    Self {
      max_total,
      max_per_client,
      open: Mutex::default(),
      total: AtomicUsize::new(0),
      refused: AtomicU64::new(0),
    }
  }

  /// Admits a connection from `ip`, or `None` when a cap is reached. The
  /// connection counts as open until the returned ticket drops.
  pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
    let client = client_of(ip);
    let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
    let from_client = open.get(&client).copied().unwrap_or(0);
    if self.total.load(Ordering::Relaxed) >= self.max_total || from_client >= self.max_per_client {
      self.refused.fetch_add(1, Ordering::Relaxed);
      return None;
    }
    open.insert(client, from_client + 1);
    self.total.fetch_add(1, Ordering::Relaxed);
    Some(Admitted {
      caps: self.clone(),
      client,
    })
  }

  /// Connections open now.
  pub fn open(&self) -> usize {
    self.total.load(Ordering::Relaxed)
  }

  /// Connections refused so far because a cap was reached.
  pub fn refused(&self) -> u64 {
    self.refused.load(Ordering::Relaxed)
  }

  fn release(&self, client: IpAddr) {
    let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(count) = open.get_mut(&client) {
      *count -= 1;
      if *count == 0 {
        open.remove(&client);
      }
    }
    self.total.fetch_sub(1, Ordering::Relaxed);
  }
}

/// An admitted connection; dropping it frees its place.
pub(crate) struct Admitted {
  caps: Arc<ConnectionCaps>,
  client: IpAddr,
}

impl Drop for Admitted {
  fn drop(&mut self) {
    self.caps.release(self.client);
  }
}

/// A connection's requests, as its idle watchdog sees them.
pub(crate) struct Activity {
  started: Instant,
  in_flight: AtomicUsize,
  /// When the last request ended, in milliseconds after `started`.
  idle_since_ms: AtomicU64,
}

impl Activity {
  pub(crate) fn new() -> Self {
    Self {
      started: Instant::now(),
      in_flight: AtomicUsize::new(0),
      idle_since_ms: AtomicU64::new(0),
    }
  }

  /// Marks a request as started; it counts until the guard drops.
  pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
    self.in_flight.fetch_add(1, Ordering::Relaxed);
    InFlight(self.clone())
  }

  /// How much longer the connection may stay idle, `None` once it has
  /// been idle for `timeout`.
  fn remaining(&self, timeout: Duration) -> Option<Duration> {
    if self.in_flight.load(Ordering::Relaxed) > 0 {
      return Some(timeout);
    }
    let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
    let idle = self.started.elapsed().saturating_sub(since);
    timeout.checked_sub(idle).filter(|left| !left.is_zero())
  }

  /// Resolves once the connection has had no request in flight, and
  /// started none, for `timeout`.
  pub(crate) async fn idle_for(&self, timeout: Duration) {
    while let Some(left) = self.remaining(timeout) {
      tokio::time::sleep(left).await;
    }
  }
}

/// A request in flight on a connection.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
  fn drop(&mut self) {
    let now = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    self.0.idle_since_ms.store(now, Ordering::Relaxed);
    self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
  }
}
