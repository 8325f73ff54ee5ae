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
