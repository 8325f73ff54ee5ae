//! Service bindings on a node: `env.AUTH.fetch()` runs on the bound worker's
//! executor, found by name in the live routing table (the version a
//! request to it would get), with no network hop; a request its static
//! assets answer is answered by them, as a client's would be. A dispatch namespace
//! binding does the same for `env.DISPATCHER.get(name)`, with the user
//! worker `name` of its namespace, which no public route reaches.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use outpost_protocol::{
  DispatchNamespaceBinding, ServiceBinding, is_worker_name, namespaced_worker,
};
use outpost_runtime::{
  ServiceBindings, ServiceFailure, ServiceFetcher, ServiceTarget, WorkerRequest, WorkerResponse,
};

use crate::dispatch::Dispatcher;
use crate::routes::Routes;

/// Runs one worker's service and dispatch namespace bindings on this node.
pub struct ServiceRouter {
  routes: Routes,
  dispatcher: Arc<Dispatcher>,
  /// Bound worker (and entrypoint) by binding name.
  services: BTreeMap<String, ServiceBinding>,
  /// Namespace by binding name.
  namespaces: BTreeMap<String, String>,
}

impl ServiceRouter {
  /// The bindings `services` and `namespaces` declare, served from
  /// `routes` through `dispatcher`; `None` when there are none.
  pub fn bindings(
    services: &[ServiceBinding],
    namespaces: &[DispatchNamespaceBinding],
    routes: &Routes,
    dispatcher: &Arc<Dispatcher>,
  ) -> Option<ServiceBindings> {
    if services.is_empty() && namespaces.is_empty() {
      return None;
    }
    let services: BTreeMap<String, ServiceBinding> = services
      .iter()
      .map(|s| (s.binding.clone(), s.clone()))
      .collect();
    let namespaces: BTreeMap<String, String> = namespaces
      .iter()
      .map(|n| (n.binding.clone(), n.namespace.clone()))
      .collect();
    Some(ServiceBindings {
      names: services.keys().cloned().collect(),
      namespaces: namespaces.keys().cloned().collect(),
      fetcher: Arc::new(Self {
        routes: routes.clone(),
        dispatcher: dispatcher.clone(),
        services,
        namespaces,
      }),
    })
  }

  /// The worker `target` reaches, by the name it is deployed under, and
  /// the entrypoint to call.
  fn resolve(&self, target: ServiceTarget<'_>) -> Result<(String, Option<String>), ServiceFailure> {
    let unbound = || ServiceFailure::Failed(format!("no binding {}", target.binding));
    match target.worker {
      None => {
        let bound = self.services.get(target.binding).ok_or_else(unbound)?;
        Ok((bound.service.clone(), bound.entrypoint.clone()))
      }
      Some(user) => {
        let namespace = self.namespaces.get(target.binding).ok_or_else(unbound)?;
        if !is_worker_name(user) {
          return Err(ServiceFailure::NoSuchWorker);
        }
        Ok((namespaced_worker(namespace, user), None))
      }
    }
  }
}

impl std::fmt::Debug for ServiceRouter {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("ServiceRouter")
      .field("services", &self.services)
      .field("namespaces", &self.namespaces)
      .finish_non_exhaustive()
  }
}

impl ServiceFetcher for ServiceRouter {
  fn fetch(
    &self,
    target: ServiceTarget<'_>,
    mut request: WorkerRequest,
  ) -> Pin<Box<dyn Future<Output = Result<WorkerResponse, ServiceFailure>>>> {
    let (worker, entrypoint) = match self.resolve(target) {
      Ok(found) => found,
      Err(failure) => return Box::pin(async move { Err(failure) }),
    };
    let table = self.routes.current();
    let Some(executor_name) = table.executor_of(&worker).map(str::to_owned) else {
      let failure = match target.worker {
        Some(_) => ServiceFailure::NoSuchWorker,
        None => ServiceFailure::Failed(format!("worker {worker:?} is not running on this node")),
      };
      return Box::pin(async move { Err(failure) });
    };
    // A plain fetch() meets the bound worker's static assets first, as a
    // client's request does.
    if request.rpc.is_none()
      && entrypoint.is_none()
      && let Some(site) = table.assets_for(&executor_name)
      && let Ok(uri) = request.url.parse::<http::Uri>()
      && let Some(asset) = site.answer(&request.method, uri.path(), uri.query(), &request.headers)
    {
      let response = WorkerResponse::from(asset);
      return Box::pin(async move { Ok(response) });
    }
    let executor = self.dispatcher.executor_for(&executor_name).clone();
    request.entrypoint = entrypoint;
    Box::pin(async move {
      executor
        .dispatch(&executor_name, request)
        .await
        .map_err(|err| ServiceFailure::Failed(err.to_string()))
    })
  }
}
