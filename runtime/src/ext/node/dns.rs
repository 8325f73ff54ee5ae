//! `op_node_dns_lookup`: node:dns's lookups, through the system resolver
//! and the worker's outbound address policy, so a worker learns only
//! addresses it may connect to.

use std::cell::RefCell;
use std::rc::Rc;

use deno_core::{OpState, op2};

use super::error::NodeError;
use crate::ext::fetch::client::{AddressError, checked_addrs};
use crate::ext::fetch::outbound_config;

/// The addresses of `host`, as text, in the resolver's order.
#[op2]
#[serde]
pub async fn op_node_dns_lookup(
  state: Rc<RefCell<OpState>>,
  #[string] host: String,
) -> Result<Vec<String>, NodeError> {
  let policy = outbound_config(&state.borrow()).policy;
  let addrs = checked_addrs(&policy, &host, 0)
    .await
    .map_err(|err| match err {
      AddressError::Refused(why) => NodeError::DnsRefused(why),
      AddressError::Resolve(_) => NodeError::DnsNotFound(host.clone()),
    })?;
  let mut seen = Vec::new();
  for addr in addrs {
    let ip = addr.ip().to_string();
    if !seen.contains(&ip) {
      seen.push(ip);
    }
  }
  Ok(seen)
}
