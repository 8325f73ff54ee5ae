//! The Cache API (`caches.default`, `caches.open`): hits, misses, expiry by
//! `max-age` and `s-maxage`, responses kept out by their headers, and one
//! worker's entries hidden from another.

use std::time::Duration;

use crate::util::{TestServer, http1};

/// GETs `path` and returns its `x-cache` header and body.
async fn get(server: &TestServer, path: &str) -> (String, String) {
  get_from(server, "localhost", path).await
}

/// GETs `path` with Host `host`.
async fn get_from(server: &TestServer, host: &str, path: &str) -> (String, String) {
  let response = http1()
    .get(server.url(path))
    .header("host", host)
    .send()
    .await
    .expect("the worker answers");
  assert_eq!(response.status(), 200, "{path}");
  let cache = response.headers()["x-cache"]
    .to_str()
    .expect("ascii")
    .to_owned();
  (cache, response.text().await.expect("a body"))
}

fn hit(body: &str) -> (String, String) {
  ("HIT".to_owned(), body.to_owned())
}

fn miss(body: &str) -> (String, String) {
  ("MISS".to_owned(), body.to_owned())
}

#[tokio::test]
async fn a_response_is_stored_found_and_expires() {
  let server = TestServer::fixture("cache").await;
  assert_eq!(get(&server, "/a?cc=max-age=1").await, miss("response 1"));
  assert_eq!(get(&server, "/a").await, hit("response 1"));
  assert_eq!(get(&server, "/b").await, miss("response 2"), "another key");
  tokio::time::sleep(Duration::from_millis(1200)).await;
  assert_eq!(get(&server, "/a").await, miss("response 3"), "past max-age");
  assert_eq!(
    get(&server, "/b").await,
    hit("response 2"),
    "within max-age"
  );
}

#[tokio::test]
async fn s_maxage_wins_over_max_age() {
  let server = TestServer::fixture("cache").await;
  assert_eq!(
    get(&server, "/a?cc=max-age=60,%20s-maxage=1").await,
    miss("response 1")
  );
  assert_eq!(get(&server, "/a").await, hit("response 1"));
  tokio::time::sleep(Duration::from_millis(1200)).await;
  assert_eq!(get(&server, "/a").await, miss("response 2"));
}

#[tokio::test]
async fn uncacheable_responses_are_not_stored() {
  let server = TestServer::fixture("cache").await;
  for (n, cc) in [
    "no-store",
    "private,%20max-age=60",
    "no-cache",
    "public",
    "max-age=0",
  ]
  .into_iter()
  .enumerate()
  {
    let path = format!("/k{n}?cc={cc}");
    assert_eq!(get(&server, &path).await.0, "MISS", "{cc}");
    assert_eq!(get(&server, &path).await.0, "MISS", "{cc} again");
  }
}

#[tokio::test]
async fn delete_and_named_caches() {
  let server = TestServer::fixture("cache").await;
  assert_eq!(get(&server, "/a").await, miss("response 1"));
  assert_eq!(
    get(&server, "/a?cache=other").await,
    miss("response 2"),
    "a named cache is apart from the default"
  );
  assert_eq!(get(&server, "/a?cache=other").await, hit("response 2"));
  let deleted = http1()
    .delete(server.url("/a"))
    .send()
    .await
    .expect("the worker answers")
    .text()
    .await
    .expect("a body");
  assert_eq!(deleted, r#"{"deleted":true}"#);
  assert_eq!(get(&server, "/a").await, miss("response 3"));
  assert_eq!(get(&server, "/a?cache=other").await, hit("response 2"));
}

#[tokio::test]
async fn workers_do_not_see_each_others_entries() {
  let root = tempfile::tempdir().expect("temp dir");
  let source = std::fs::read_to_string(crate::util::fixture_entry("cache")).expect("fixture");
  for name in ["one", "two"] {
    std::fs::create_dir(root.path().join(name)).expect("folder");
    std::fs::write(root.path().join(name).join("worker.js"), &source).expect("worker.js");
  }
  let server = TestServer::folder(root.path()).await;
  // By Host, so both workers see the same URL.
  assert_eq!(
    get_from(&server, "one.localhost", "/k").await,
    miss("response 1")
  );
  assert_eq!(
    get_from(&server, "one.localhost", "/k").await,
    hit("response 1")
  );
  assert_eq!(
    get_from(&server, "two.localhost", "/k").await,
    miss("response 1"),
    "the same URL in another worker's cache is a miss"
  );
}
