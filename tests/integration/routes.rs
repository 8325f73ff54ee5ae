//! The routing table's rules, directly.

use outpost_edge::RouteTable;

fn table() -> RouteTable {
  RouteTable::named(["api".to_owned(), "shop".to_owned()])
}

#[test]
fn a_localhost_subdomain_wins_with_or_without_a_port_and_in_any_case() {
  let table = table();
  assert_eq!(table.route("api.localhost", "/shop/x"), Some("api"));
  assert_eq!(table.route("api.localhost:8080", "/"), Some("api"));
  assert_eq!(
    table.route("API.LocalHost:8080".to_ascii_lowercase().as_str(), "/"),
    Some("api")
  );
  assert_eq!(table.route("Api.localhost", "/"), Some("api"));
}

#[test]
fn a_path_prefix_routes_when_the_host_names_no_worker() {
  let table = table();
  assert_eq!(table.route("example.com", "/shop/cart"), Some("shop"));
  assert_eq!(table.route("127.0.0.1:8080", "/shop"), Some("shop"));
  assert_eq!(table.route("nobody.localhost", "/api/v1"), Some("api"));
  assert_eq!(table.route("example.com", "/shopping"), None);
  assert_eq!(table.route("example.com", "/"), None);
}

#[test]
fn lookalike_hosts_do_not_match() {
  let table = table();
  assert_eq!(table.route("api.localhost.evil.com", "/"), None);
  assert_eq!(table.route("xapi.localhost", "/"), None);
  assert_eq!(table.route("api.localhost:notaport", "/"), None);
}

#[test]
fn a_catch_all_takes_everything() {
  let table = RouteTable::catch_all("dev");
  assert_eq!(table.route("anything", "/at/all"), Some("dev"));
  assert_eq!(table.workers().collect::<Vec<_>>(), ["dev"]);
}

fn deployed_table() -> RouteTable {
  let route = |pattern: &str, worker: &str| {
    (
      outpost_protocol::RoutePattern::parse(pattern).expect("pattern"),
      worker.to_owned(),
    )
  };
  let versions = std::collections::BTreeMap::from([
    ("api".to_owned(), vec![(100, "api@4".to_owned())]),
    (
      "www".to_owned(),
      vec![(90, "www@2".to_owned()), (10, "www@1".to_owned())],
    ),
  ]);
  RouteTable::deployed(
    [
      route("*.example.com/*", "www"),
      route("api.example.com/*", "api"),
      route("api.example.com/static/*", "www"),
      route("ghost.example.com/*", "ghost"),
    ],
    versions,
  )
}

#[test]
fn deployed_routes_take_the_most_specific_pattern_and_a_version() {
  let table = deployed_table();
  assert_eq!(table.route("api.example.com", "/v1/users"), Some("api@4"));
  assert_eq!(table.route("api.example.com:443", "/"), Some("api@4"));
  let static_file = table.route("api.example.com", "/static/app.css");
  assert!(
    matches!(static_file, Some("www@2" | "www@1")),
    "{static_file:?}"
  );
  assert_eq!(
    table.route("example.com", "/"),
    None,
    "the apex is not a subdomain"
  );
  assert_eq!(
    table.route("api.localhost", "/"),
    Some("api@4"),
    "deployed workers answer by name too"
  );
}

#[test]
fn a_split_sends_each_version_its_share() {
  let table = deployed_table();
  let mut newer = 0;
  for _ in 0..10_000 {
    match table.route("www.example.com", "/") {
      Some("www@2") => newer += 1,
      Some("www@1") => {}
      other => panic!("unexpected {other:?}"),
    }
  }
  assert!(
    (8_700..=9_300).contains(&newer),
    "{newer} of 10000 to the 90 % version"
  );
}

#[test]
fn a_route_to_a_worker_with_no_deployment_is_left_out() {
  let table = deployed_table();
  // ghost.example.com would match `*.example.com/*` (www) were its own
  // route, to an undeployed worker, kept: it must not shadow it.
  let ghost = table.route("ghost.example.com", "/");
  assert!(matches!(ghost, Some("www@2" | "www@1")), "{ghost:?}");
  assert!(
    table.workers().all(|name| name.contains('@')),
    "only deployed versions"
  );
}
