//! Service bindings on a node: `env.AUTH.fetch()` runs on the bound worker's
//! executor, found by name in the live routing table (the version a
//! request to it would get), with no network hop.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use outpost_protocol::ServiceBinding;
use outpost_runtime::{ServiceBindings, ServiceFetcher, WorkerRequest, WorkerResponse};

use crate::dispatch::Dispatcher;
use crate::routes::Routes;

/// Runs one worker's service bindings on this node.
pub struct ServiceRouter {
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  /// Bound worker (and entrypoint) by binding name.
  targets: BTreeMap<String, ServiceBinding>,
}

impl ServiceRouter {
  /// The bindings `services` declares, served from `routes` through
  /// `dispatcher`; `None` when there are none.
  pub fn bindings(
    services: &[ServiceBinding],
    routes: &Routes,
    dispatcher: &Arc<Dispatcher>,
  ) -> Option<ServiceBindings> {
    if services.is_empty() {
      return None;
    }
    let targets: BTreeMap<String, ServiceBinding> = services
      .iter()
      .map(|s| (s.binding.clone(), s.clone()))
      .collect();
    Some(ServiceBindings {
      names: targets.keys().cloned().collect(),
      fetcher: Arc::new(Self {
        routes: routes.clone(),
        dispatcher: dispatcher.clone(),
        targets,
      }),
    })
  }
}

impl std::fmt::Debug for ServiceRouter {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ServiceRouter")
      .field("targets", &self.targets)
      .finish_non_exhaustive()
  }
}

impl ServiceFetcher for ServiceRouter {
  fn fetch(
    &self,
    binding: &str,
    mut request: WorkerRequest,
  ) -> Pin<Box<dyn Future<Output = Result<WorkerResponse, String>>>> {
    let Some(ServiceBinding {
      service: worker,
      entrypoint,
      ..
    }) = self.targets.get(binding)
    else {
      let why = format!("no service is bound as {binding}");
      return Box::pin(async move { Err(why) });
    };
    let table = self.routes.current();
    let Some(executor_name) = table.executor_of(worker).map(str::to_owned) else {
      let why = format!("worker {worker:?} is not running on this node");
      return Box::pin(async move { Err(why) });
    };
    let executor = self.dispatcher.executor_for(&executor_name).clone();
    request.entrypoint = entrypoint.clone();
    Box::pin(async move {
      executor
        .dispatch(&executor_name, request)
        .await
        .map_err(|err| err.to_string())
    })
  }
}
