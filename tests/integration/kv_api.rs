//! The control plane's KV API (`/v1/kv/namespaces...`) on both stores:
//! namespaces, values with metadata and expiry, lists, bulk writes, scopes,
//! and refusals that leave the store as it was.

use reqwest::Method;
use serde_json::{Value, json};

use crate::control_api::Control;
use crate::util::Backend;

on_both_stores!(
  namespaces_are_created_listed_and_deleted,
  values_round_trip_with_metadata_and_expiry,
  bulk_writes_are_all_or_nothing,
  kv_calls_need_their_scope,
  uploads_must_bind_existing_namespaces,
);

/// A raw call: status, headers and body bytes.
async fn raw(
  control: &Control,
  method: Method,
  path: &str,
  token: &str,
  headers: &[(&str, &str)],
  body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
  let mut request = control
    .client
    .request(method, format!("{}{path}", control.base))
    .bearer_auth(token)
    .body(body);
  for (name, value) in headers {
    request = request.header(*name, *value);
  }
  let response = request.send().await.expect("the API answers");
  let status = response.status().as_u16();
  let headers = response.headers().clone();
  (
    status,
    headers,
    response.bytes().await.expect("body").to_vec(),
  )
}

/// A new token of `scope`, made through the API.
async fn make_token_on(control: &Control, scope: &str) -> String {
  let (status, body) = control
    .admin(Method::POST, "/tokens", Some(json!({ "scope": scope })))
    .await;
  assert_eq!(status, 201, "{body}");
  body["token"].as_str().expect("a token").to_owned()
}

async fn create_namespace(control: &Control, title: &str) -> String {
  let (status, body) = control
    .admin(
      Method::POST,
      "/kv/namespaces",
      Some(json!({ "title": title })),
    )
    .await;
  assert_eq!(status, 201, "{body}");
  body["namespace"]["id"].as_str().expect("an id").to_owned()
}

async fn put(control: &Control, ns: &str, key: &str, value: &[u8], extra: &str) -> (u16, Value) {
  let path = format!("/kv/namespaces/{ns}/values/{key}{extra}");
  let (status, _, body) = raw(
    control,
    Method::PUT,
    &path,
    &control.admin,
    &[],
    value.to_vec(),
  )
  .await;
  (status, serde_json::from_slice(&body).expect("JSON"))
}

async fn keys(control: &Control, ns: &str, query: &str) -> Value {
  let (status, body) = control
    .admin(
      Method::GET,
      &format!("/kv/namespaces/{ns}/keys{query}"),
      None,
    )
    .await;
  assert_eq!(status, 200, "{body}");
  body
}

fn names(page: &Value) -> Vec<&str> {
  page["keys"]
    .as_array()
    .expect("keys")
    .iter()
    .map(|k| k["name"].as_str().expect("name"))
    .collect()
}

async fn namespaces_are_created_listed_and_deleted(backend: Backend) {
  let control = Control::start(backend).await;
  let users = create_namespace(&control, "users").await;
  let cache = create_namespace(&control, "cache").await;
  assert_eq!(users.len(), 32);
  assert_ne!(users, cache);
  let (status, body) = control
    .admin(
      Method::POST,
      "/kv/namespaces",
      Some(json!({ "title": "users" })),
    )
    .await;
  assert_eq!(status, 409, "titles are unique: {body}");

  let (_, listed) = control.admin(Method::GET, "/kv/namespaces", None).await;
  let titles: Vec<&str> = listed["namespaces"]
    .as_array()
    .expect("list")
    .iter()
    .map(|ns| ns["title"].as_str().expect("title"))
    .collect();
  assert_eq!(titles, ["cache", "users"]);

  put(&control, &users, "ann", b"1", "").await;
  let (status, _) = control
    .admin(Method::DELETE, &format!("/kv/namespaces/{users}"), None)
    .await;
  assert_eq!(status, 200);
  let (status, body) = control
    .admin(Method::GET, &format!("/kv/namespaces/{users}/keys"), None)
    .await;
  assert_eq!(status, 404, "gone with its keys: {body}");
  let (status, _) = control
    .admin(Method::DELETE, &format!("/kv/namespaces/{users}"), None)
    .await;
  assert_eq!(status, 404);
}

async fn values_round_trip_with_metadata_and_expiry(backend: Backend) {
  let control = Control::start(backend).await;
  let ns = create_namespace(&control, "values").await;
  let binary: Vec<u8> = (0..=255u8).collect();
  let path = format!("/kv/namespaces/{ns}/values/a%2Fb");
  let (status, _, body) = raw(
    &control,
    Method::PUT,
    &path,
    &control.admin,
    &[("outpost-kv-metadata", r#"{"type":"bin"}"#)],
    binary.clone(),
  )
  .await;
  assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
  let (status, headers, body) =
    raw(&control, Method::GET, &path, &control.admin, &[], vec![]).await;
  assert_eq!((status, &body), (200, &binary), "the raw bytes come back");
  assert_eq!(headers["outpost-kv-metadata"], r#"{"type":"bin"}"#);
  assert!(headers.get("outpost-kv-expiration").is_none());

  assert_eq!(
    put(&control, &ns, "brief", b"x", "?expiration_ttl=60")
      .await
      .0,
    200
  );
  let page = keys(&control, &ns, "").await;
  assert_eq!(names(&page), ["a/b", "brief"]);
  assert_eq!(page["keys"][0]["metadata"], r#"{"type":"bin"}"#);
  assert!(page["keys"][1]["expiration"].as_u64().is_some());
  control.app.clock().advance(61);
  assert_eq!(names(&keys(&control, &ns, "").await), ["a/b"], "expired");
  let (status, _, _) = raw(
    &control,
    Method::GET,
    &format!("/kv/namespaces/{ns}/values/brief"),
    &control.admin,
    &[],
    vec![],
  )
  .await;
  assert_eq!(status, 404);

  // Refusals store nothing. (A client sends "." and ".." as path
  // segments no server sees, so the key check shows with a long key.)
  let long_key = "k".repeat(513);
  for (key, extra, value, want) in [
    (long_key.as_str(), "", &b"x"[..], 400),
    ("ok", "?expiration_ttl=59", &b"x"[..], 400),
    ("ok", "?expiration=10", &b"x"[..], 400),
  ] {
    let (status, body) = put(&control, &ns, key, value, extra).await;
    assert_eq!(status, want, "{key}{extra}: {body}");
  }
  let big = vec![b'x'; 25 * 1024 * 1024 + 1];
  assert_eq!(put(&control, &ns, "big", &big, "").await.0, 413);
  let (status, _, _) = raw(
    &control,
    Method::PUT,
    &format!("/kv/namespaces/{ns}/values/meta"),
    &control.admin,
    &[("outpost-kv-metadata", "not json")],
    b"x".to_vec(),
  )
  .await;
  assert_eq!(status, 400);
  assert_eq!(names(&keys(&control, &ns, "").await), ["a/b"]);

  let (status, _, _) = raw(&control, Method::DELETE, &path, &control.admin, &[], vec![]).await;
  assert_eq!(status, 200);
  assert!(names(&keys(&control, &ns, "").await).is_empty());
}

async fn bulk_writes_are_all_or_nothing(backend: Backend) {
  let control = Control::start(backend).await;
  let ns = create_namespace(&control, "bulk").await;
  let pairs: Vec<Value> = (0..10_000)
    .map(|n| json!({ "key": format!("k{n:05}"), "value": format!("v{n}") }))
    .collect();
  let bulk = format!("/kv/namespaces/{ns}/bulk");
  let (status, body) = control
    .admin(Method::PUT, &bulk, Some(Value::Array(pairs.clone())))
    .await;
  assert_eq!(status, 200, "{body}");
  assert_eq!(body["written"], 10_000);
  let page = keys(&control, &ns, "?limit=3&prefix=k0999").await;
  assert_eq!(names(&page), ["k09990", "k09991", "k09992"]);
  assert_eq!(page["list_complete"], false);
  let next = keys(
    &control,
    &ns,
    &format!(
      "?prefix=k0999&cursor={}",
      page["cursor"].as_str().expect("cursor")
    ),
  )
  .await;
  assert_eq!(names(&next).len(), 7);
  assert_eq!(next["list_complete"], true);

  let mut too_many = pairs;
  too_many.push(json!({ "key": "one-more", "value": "x" }));
  let (status, _) = control
    .admin(Method::PUT, &bulk, Some(Value::Array(too_many)))
    .await;
  assert_eq!(status, 413, "over 10,000 pairs");

  let mixed = json!([
    { "key": "good", "value": "aGVsbG8=", "base64": true, "metadata": { "m": 1 } },
    { "key": "..", "value": "refused" },
  ]);
  let (status, body) = control.admin(Method::PUT, &bulk, Some(mixed)).await;
  assert_eq!(status, 400, "{body}");
  assert!(
    body["error"]["message"]
      .as_str()
      .expect("message")
      .contains("pair 1"),
    "{body}"
  );
  assert!(
    names(&keys(&control, &ns, "?prefix=good").await).is_empty(),
    "no pair of a refused bulk is written"
  );
  let good = json!([{ "key": "good", "value": "aGVsbG8=", "base64": true }]);
  assert_eq!(control.admin(Method::PUT, &bulk, Some(good)).await.0, 200);
  let (_, _, value) = raw(
    &control,
    Method::GET,
    &format!("/kv/namespaces/{ns}/values/good"),
    &control.admin,
    &[],
    vec![],
  )
  .await;
  assert_eq!(value, b"hello");

  let keys_to_delete: Vec<String> = (0..10_000).map(|n| format!("k{n:05}")).collect();
  let (status, _) = control
    .admin(
      Method::POST,
      &format!("{bulk}/delete"),
      Some(json!(keys_to_delete)),
    )
    .await;
  assert_eq!(status, 200);
  assert_eq!(names(&keys(&control, &ns, "").await), ["good"]);
}

async fn kv_calls_need_their_scope(backend: Backend) {
  let control = Control::start(backend).await;
  let ns = create_namespace(&control, "scoped").await;
  let read_only = make_token_on(&control, "read-only").await;
  let kv_write = make_token_on(&control, "kv-write").await;
  let deploy = make_token_on(&control, "deploy").await;
  let path = format!("/kv/namespaces/{ns}/values/k");
  for (token, want) in [(&read_only, 403), (&deploy, 403), (&kv_write, 200)] {
    let (status, _, _) = raw(&control, Method::PUT, &path, token, &[], b"v".to_vec()).await;
    assert_eq!(status, want);
  }
  let (status, _, body) = raw(&control, Method::GET, &path, &read_only, &[], vec![]).await;
  assert_eq!(
    (status, body.as_slice()),
    (200, &b"v"[..]),
    "reading is read-only's"
  );
  let (status, _, _) = raw(&control, Method::DELETE, &path, &read_only, &[], vec![]).await;
  assert_eq!(status, 403);
  let (status, _, _) = raw(&control, Method::GET, &path, "opt_wrong", &[], vec![]).await;
  assert_eq!(status, 401);
  let (status, body) = control
    .call(
      Method::POST,
      "/kv/namespaces",
      Some(&read_only),
      Some(br#"{"title":"nope"}"#.to_vec()),
    )
    .await;
  assert_eq!(status, 403, "{body}");
}

async fn uploads_must_bind_existing_namespaces(backend: Backend) {
  let control = Control::start(backend).await;
  let ns = create_namespace(&control, "bound").await;
  let bundle = |id: &str| {
    json!({
      "main": "worker.js",
      "modules": { "worker.js": "export default { fetch() { return new Response('x'); } };" },
      "kv_namespaces": [{ "binding": "DATA", "id": id }],
    })
  };
  let (status, body) = control
    .admin(
      Method::POST,
      "/workers/kv/versions",
      Some(bundle("missing")),
    )
    .await;
  assert_eq!(status, 400, "{body}");
  assert!(
    body["error"]["message"]
      .as_str()
      .expect("message")
      .contains("DATA names KV namespace \"missing\""),
    "{body}"
  );
  let (status, body) = control
    .admin(Method::POST, "/workers/kv/versions", Some(bundle(&ns)))
    .await;
  assert_eq!(status, 201, "{body}");
  let clash = json!({
    "main": "worker.js",
    "modules": { "worker.js": "export default {};" },
    "vars": { "DATA": "x" },
    "kv_namespaces": [{ "binding": "DATA", "id": ns }],
  });
  let (status, body) = control
    .admin(Method::POST, "/workers/kv/versions", Some(clash))
    .await;
  assert_eq!(status, 400, "a binding and a var of one name: {body}");
}
