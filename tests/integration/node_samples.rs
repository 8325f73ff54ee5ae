//! workerd's nodejs-compat samples that need node:fs, node:v8 and node:zlib
//! (fs, fs-graceful, fs-yazl, serdes), with graceful-fs and yazl from the
//! npm registry (fixtures/npm/node-samples), in `outpost dev` and deployed:
//! `/bundle` holds the worker's own modules under the same names in both,
//! and `/tmp` belongs to one request.

use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use crate::npm_projects::{control_and_edge, deploy_folder, npm_fixture};
use crate::util::{DevProcess, http1};

/// Each stored file of a zip archive, by name, inflated, checked against
/// the CRC-32 the archive gives for it.
fn unzip(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
  let u16_at = |at: usize| u16::from_le_bytes([archive[at], archive[at + 1]]) as usize;
  let u32_at = |at: usize| u32::from_le_bytes(archive[at..at + 4].try_into().expect("4 bytes"));
  let end = archive
    .windows(4)
    .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
    .expect("an end of central directory record");
  let count = u16_at(end + 10);
  let mut at = u32_at(end + 16) as usize;
  let mut files = Vec::new();
  for _ in 0..count {
    assert_eq!(u32_at(at), 0x0201_4b50, "a central directory header");
    let method = u16_at(at + 10);
    let crc = u32_at(at + 16);
    let compressed = u32_at(at + 20) as usize;
    let name_len = u16_at(at + 28);
    let extra_len = u16_at(at + 30);
    let comment_len = u16_at(at + 32);
    let local = u32_at(at + 42) as usize;
    let name = String::from_utf8(archive[at + 46..at + 46 + name_len].to_vec()).expect("name");
    let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
    let data = &archive[data_at..data_at + compressed];
    let content = match method {
      0 => data.to_vec(),
      8 => {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(data)
          .read_to_end(&mut out)
          .expect("inflates");
        out
      }
      other => panic!("compression method {other}"),
    };
    let mut check = flate2::Crc::new();
    check.update(&content);
    assert_eq!(check.sum(), crc, "CRC-32 of {name}");
    files.push((name, content));
    at += 46 + name_len + extra_len + comment_len;
  }
  files
}

/// Asks the samples at `base` (with `host`, if given) and checks each.
async fn check_samples(base: &str, host: Option<&str>, project: &Path) {
  let client = http1();
  let ask = |path: &'static str| {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(host) = host {
      request = request.header("host", host);
    }
    async move {
      let response = request.send().await.expect("request");
      let status = response.status().as_u16();
      let body = response.bytes().await.expect("body");
      assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
      body.to_vec()
    }
  };

  // nodejs-compat-fs: the module read at the top level, and /tmp empty at
  // the start of every request.
  for _ in 0..2 {
    assert_eq!(ask("/fs").await, b"Hello, World!");
  }
  // Two requests at once each see only their own /tmp.
  let (one, two) = tokio::join!(ask("/tmp?id=1"), ask("/tmp?id=2"));
  assert_eq!(
    serde_json::from_slice::<Value>(&one).expect("JSON"),
    json!(["request-1.txt"])
  );
  assert_eq!(
    serde_json::from_slice::<Value>(&two).expect("JSON"),
    json!(["request-2.txt"])
  );

  // nodejs-compat-fs-graceful: graceful-fs, unmodified, over node:fs.
  let source = std::fs::read(project.join("src/index.js")).expect("index.js");
  assert_eq!(ask("/fs-graceful").await, source);

  // nodejs-compat-fs-yazl: a zip of /bundle/src written to /tmp through
  // node:zlib and node:fs streams.
  let files = unzip(&ask("/fs-yazl").await);
  let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
  assert_eq!(names, ["config.js", "index.js"]);
  for (name, content) in &files {
    let on_disk = std::fs::read(project.join("src").join(name)).expect("source");
    assert_eq!(content, &on_disk, "{name} in the zip");
  }

  // nodejs-compat-serdes, and the bytes Node writes for { x: 1 }.
  assert_eq!(ask("/serdes").await, b"ok ff0f6f22017849027b01");

  let api: Value = serde_json::from_slice(&ask("/fs-api").await).expect("JSON");
  assert_eq!(
    api,
    json!({
      "mkdir": "/tmp/a",
      "appended": "one+more",
      "size": 8,
      "entries": ["c:dir", "one.txt:file"],
      "recursive": ["b", "b/c", "b/one.txt"],
      "renamed": [false, true],
      "fd": "ONE",
      "errors": ["ENOENT open", "EROFS open", "ENOTEMPTY rmdir", "ENOENT open", "EISDIR open"],
      "promises": "promised",
      "callback": "promised",
      "stream": true,
      "root": ["bundle", "dev", "tmp"],
      "bundle": ["config.js", "index.js"],
      // Named below the folder holding every module, packages included.
      "bundleRoot": ["node_modules", "src"],
      "removed": false,
    })
  );
  let zlib: Value = serde_json::from_slice(&ask("/zlib").await).expect("JSON");
  assert_eq!(
    zlib,
    json!({
      "gzip": true,
      "deflate": true,
      "raw": true,
      "brotli": true,
      "unzip": true,
      "smaller": true,
      "crc32": 907_060_870u32,
      "streamed": true,
      "callback": true,
      "bad": "Z_DATA_ERROR",
    })
  );
}

#[tokio::test(flavor = "multi_thread")]
async fn fs_serdes_and_zlib_samples_run_in_dev_and_deployed() {
  let project = npm_fixture("node-samples");
  let dev = DevProcess::start(project.path(), &[]).await;
  check_samples(dev.url.trim_end_matches('/'), None, project.path()).await;
  drop(dev);

  let data = tempfile::tempdir().expect("temp dir");
  let (control, _edge, edge_url) = control_and_edge(data.path());
  deploy_folder(&control, project.path());
  check_samples(&edge_url, Some("node-samples.localhost"), project.path()).await;
}
