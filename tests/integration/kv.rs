//! The KV binding API, every form, through a worker (the `kv` fixture) on
//! a real server, with the control-plane store behind it (SQLite, the same
//! store `outpost dev` keeps) and a clock the tests move to expire keys.

use std::sync::Arc;

use outpost_control::kv::StoreKv;
use outpost_control::store::{KvWrite, SqliteStore, Store};
use outpost_protocol::kv::{Clock, KvEntry};
use reqwest::Method;
use serde_json::{Value, json};

use crate::util::{TestServer, TestServerOptions, fixture_entry, http1};

/// A worker with `env.KV` bound to a namespace in a fresh store.
struct KvWorker {
  server: TestServer,
  store: Arc<dyn Store>,
  clock: Clock,
  client: reqwest::Client,
  _dir: tempfile::TempDir,
}

const NAMESPACE: &str = "ns-test";

impl KvWorker {
  async fn start() -> Self {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> =
      Arc::new(SqliteStore::open(&dir.path().join("kv.db")).expect("store opens"));
    store
      .create_kv_namespace(NAMESPACE.into(), "test".into())
      .await
      .expect("namespace");
    let clock = Clock::system();
    let backend = Arc::new(StoreKv::new(store.clone(), clock.clone()));
    // The 10 MiB put reads its stream in JS, which can pass the default
    // 50 ms CPU limit on a loaded machine; limits have tests of their own.
    let limits = outpost_runtime::WorkerLimits {
      cpu_per_request: std::time::Duration::from_secs(10),
      ..Default::default()
    };
    let options = TestServerOptions {
      limits,
      kv_bindings: vec![("KV".into(), NAMESPACE.into())],
      kv_backend: Some(backend),
      ..Default::default()
    };
    let server = TestServer::start(&fixture_entry("kv"), options).await;
    Self {
      server,
      store,
      clock,
      client: http1(),
      _dir: dir,
    }
  }

  async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = self
      .client
      .request(method, self.server.url(path))
      .body(body)
      .send()
      .await
      .expect("the worker answers");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("a body").to_vec())
  }

  async fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
    let (status, answer) = self.call(Method::PUT, path, body.into()).await;
    assert_eq!(
      (status, answer.as_slice()),
      (200, &b"stored"[..]),
      "PUT {path}: {}",
      String::from_utf8_lossy(&answer)
    );
  }

  async fn get(&self, path: &str) -> (u16, Vec<u8>) {
    self.call(Method::GET, path, Vec::new()).await
  }

  async fn json(&self, path: &str) -> Value {
    let (status, body) = self.get(path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
  }

  /// Every key in the namespace, straight from the store.
  async fn stored_keys(&self) -> Vec<String> {
    let options = outpost_protocol::kv::KvListOptions {
      prefix: String::new(),
      limit: 1000,
      cursor: None,
    };
    let page = self
      .store
      .kv_list(NAMESPACE.into(), options, self.clock.now())
      .await
      .expect("list");
    page.keys.into_iter().map(|k| k.name).collect()
  }
}

#[tokio::test]
async fn text_json_binary_and_stream_round_trip() {
  let kv = KvWorker::start().await;
  kv.put("/v/greeting", "hello, KV").await;
  assert_eq!(kv.get("/v/greeting").await, (200, b"hello, KV".to_vec()));
  assert_eq!(
    kv.get("/v/greeting?type=stream").await,
    (200, b"hello, KV".to_vec())
  );

  kv.put("/v/doc", r#"{"a":[1,2,3]}"#).await;
  assert_eq!(
    kv.json("/v/doc?type=json").await,
    json!({ "parsed": { "a": [1, 2, 3] } })
  );

  // Every byte value, which text would mangle.
  let binary: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
  kv.put("/v/bytes", binary.clone()).await;
  assert_eq!(
    kv.get("/v/bytes?type=arrayBuffer").await,
    (200, binary.clone())
  );
  assert_eq!(kv.get("/v/bytes?type=stream").await, (200, binary));

  // Keys are any UTF-8, slashes included.
  kv.put("/v/a%2Fb%20%C3%A9", "odd key").await;
  assert_eq!(
    kv.get("/v/a%2Fb%20%C3%A9").await,
    (200, b"odd key".to_vec())
  );

  assert_eq!(kv.get("/v/missing").await.0, 404, "a missing key is null");
  let (status, _) = kv.call(Method::DELETE, "/v/greeting", Vec::new()).await;
  assert_eq!(status, 200);
  assert_eq!(kv.get("/v/greeting").await.0, 404, "deleted");
  let (status, _) = kv.call(Method::DELETE, "/v/never", Vec::new()).await;
  assert_eq!(status, 200, "deleting a missing key is fine");
}

#[tokio::test]
async fn ten_mib_streamed_in_and_out() {
  let kv = KvWorker::start().await;
  let value: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
  // The worker passes request.body, a ReadableStream, to put.
  kv.put("/v/large?stream=1", value.clone()).await;
  let (status, body) = kv.get("/v/large?type=stream").await;
  assert_eq!(status, 200);
  assert_eq!(body.len(), value.len());
  assert!(body == value, "the bytes come back as they went in");
}

#[tokio::test]
async fn metadata_and_bulk_get() {
  let kv = KvWorker::start().await;
  kv.put("/v/a?meta=%7B%22owner%22%3A%22ann%22%2C%22n%22%3A1%7D", "A")
    .await;
  kv.put("/v/b", "\"B\"").await;
  assert_eq!(
    kv.json("/m/a").await,
    json!({ "value": "A", "metadata": { "owner": "ann", "n": 1 }, "cacheStatus": null })
  );
  assert_eq!(
    kv.json("/m/b").await,
    json!({ "value": "\"B\"", "metadata": null, "cacheStatus": null })
  );
  assert_eq!(
    kv.json("/m/none").await,
    json!({ "value": null, "metadata": null, "cacheStatus": null })
  );

  let (status, body) = kv
    .call(Method::POST, "/bulk", br#"["a","b","none"]"#.to_vec())
    .await;
  assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
  let found: Value = serde_json::from_slice(&body).expect("JSON");
  assert_eq!(found, json!({ "a": "A", "b": "\"B\"", "none": null }));
  let (_, body) = kv
    .call(Method::POST, "/bulk?type=json", br#"["b"]"#.to_vec())
    .await;
  assert_eq!(
    serde_json::from_slice::<Value>(&body).expect("JSON"),
    json!({ "b": "B" })
  );
}

#[tokio::test]
async fn expired_keys_are_invisible_to_get_and_list() {
  let kv = KvWorker::start().await;
  kv.put("/v/short?ttl=60", "soon gone").await;
  let at = kv.clock.now() + 300;
  kv.put(&format!("/v/later?exp={at}"), "gone later").await;
  kv.put("/v/forever", "stays").await;

  let listed = kv.json("/list").await;
  let short = &listed["keys"][2];
  assert_eq!(short["name"], "short");
  let expiration = short["expiration"].as_u64().expect("an expiration");
  let left = expiration.saturating_sub(kv.clock.now());
  assert!((55..=60).contains(&left), "{left} s left");
  assert_eq!(listed["keys"][1]["expiration"], json!(at));
  assert!(listed["keys"][0].get("expiration").is_none(), "{listed}");

  kv.clock.advance(61);
  assert_eq!(kv.get("/v/short").await.0, 404, "past its TTL");
  assert_eq!(kv.get("/v/later").await, (200, b"gone later".to_vec()));
  let names = |listed: &Value| -> Vec<String> {
    listed["keys"]
      .as_array()
      .expect("keys")
      .iter()
      .map(|k| k["name"].as_str().expect("name").to_owned())
      .collect()
  };
  assert_eq!(names(&kv.json("/list").await), ["forever", "later"]);

  kv.clock.advance(300);
  assert_eq!(kv.get("/v/later").await.0, 404, "past its expiration");
  assert_eq!(names(&kv.json("/list").await), ["forever"]);
}

#[tokio::test]
async fn list_pages_through_2500_keys_by_cursor() {
  let kv = KvWorker::start().await;
  let writes = (0..2500u32)
    .map(|n| KvWrite::Put {
      key: format!("item:{n:05}"),
      entry: KvEntry {
        value: n.to_string().into_bytes(),
        metadata: n.is_multiple_of(2).then(|| format!(r#"{{"n":{n}}}"#)),
        expiration: None,
      },
    })
    .chain(std::iter::once(KvWrite::Put {
      key: "other".into(),
      entry: KvEntry {
        value: b"x".to_vec(),
        metadata: None,
        expiration: None,
      },
    }))
    .collect();
  kv.store
    .kv_write(NAMESPACE.into(), writes)
    .await
    .expect("write");

  let mut seen = Vec::new();
  let mut cursor: Option<String> = None;
  let mut pages = 0;
  loop {
    let path = match &cursor {
      Some(c) => format!("/list?prefix=item:&cursor={}", urlencode(c)),
      None => "/list?prefix=item:".to_owned(),
    };
    let page = kv.json(&path).await;
    pages += 1;
    for key in page["keys"].as_array().expect("keys") {
      let name = key["name"].as_str().expect("name").to_owned();
      let n: u64 = name[5..].parse().expect("number");
      let metadata = n.is_multiple_of(2).then(|| json!({ "n": n }));
      assert_eq!(key.get("metadata").cloned(), metadata, "{name}");
      seen.push(name);
    }
    if page["list_complete"] == json!(true) {
      assert!(page.get("cursor").is_none());
      break;
    }
    cursor = Some(page["cursor"].as_str().expect("a cursor").to_owned());
  }
  assert_eq!(pages, 3, "1000 + 1000 + 500");
  let expected: Vec<String> = (0..2500).map(|n| format!("item:{n:05}")).collect();
  assert_eq!(seen, expected, "every key once, in order");

  let small = kv.json("/list?limit=10").await;
  assert_eq!(small["keys"].as_array().expect("keys").len(), 10);
  assert_eq!(small["list_complete"], json!(false));
  assert_eq!(small["cursor"], json!("item:00009"));
}

fn urlencode(text: &str) -> String {
  text
    .bytes()
    .map(|b| match b {
      b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
      _ => format!("%{b:02X}"),
    })
    .collect()
}

#[tokio::test]
async fn each_invalid_call_throws_its_error_and_writes_nothing() {
  let kv = KvWorker::start().await;
  let cases = [
    ("empty-key", "TypeError", "must not be empty"),
    ("long-key", "TypeError", "at most 512 bytes"),
    ("dot-key", "TypeError", "\".\" is not allowed"),
    ("dotdot-key", "TypeError", "\"..\" is not allowed"),
    ("get-long-key", "TypeError", "at most 512 bytes"),
    ("big-value", "RangeError", "26214401 bytes is over"),
    ("big-stream", "RangeError", "over the limit"),
    ("big-metadata", "RangeError", "1024-byte limit"),
    ("short-ttl", "RangeError", "at least 60 seconds"),
    ("past-expiration", "RangeError", "not in the future"),
    ("bad-value", "TypeError", "accepts only strings"),
    ("list-limit", "RangeError", "limit must be 1 to 1000"),
    ("bad-type", "TypeError", "Unknown KV value type \"blob\""),
    (
      "short-cache-ttl",
      "RangeError",
      "cacheTtl must be at least 30",
    ),
    (
      "bulk-stream",
      "TypeError",
      "Unknown KV value type \"stream\"",
    ),
  ];
  for (case, class, message) in cases {
    let answer = kv.json(&format!("/refuse/{case}")).await;
    assert_eq!(answer["thrown"], json!(true), "{case}: {answer}");
    assert_eq!(answer["class"], json!(class), "{case}: {answer}");
    let text = answer["message"].as_str().expect("a message");
    assert!(text.contains(message), "{case}: {text:?}");
  }
  assert!(
    kv.stored_keys().await.is_empty(),
    "nothing was written: {:?}",
    kv.stored_keys().await
  );
}

#[tokio::test]
async fn a_worker_sees_only_its_bindings() {
  let kv = KvWorker::start().await;
  assert_eq!(kv.json("/bindings").await, json!(["KV"]));
  let forged = kv.json("/forge/another-namespace").await;
  assert_eq!(forged["reached"], json!(false), "{forged}");
  assert_eq!(forged["class"], json!("TypeError"));
}
