//! Fuzzing on stable Rust (arbtest): the parsers that take outside input.
//! Each target has a checker that takes one concrete input and asserts
//! what must hold for it (no panic, and an invariant); the committed
//! corpus in `fixtures/fuzz/<target>/` runs through it first, then inputs
//! generated from random bytes for `OUTPOST_FUZZ_SECONDS` (default 2) per
//! target. `scripts/fuzz.sh` runs each for ten minutes; a failure prints
//! the seed that reproduces it (`ARBTEST_SEED=0x…`). Add the input it
//! found to the corpus.
//!
//! | target | input | invariant |
//! |---|---|---|
//! | bundle | an uploaded bundle's JSON | accepted ⇒ module paths are plain relative paths, asset hashes are hashes, and the canonical bytes read back to the same bundle |
//! | config | wrangler.toml / .jsonc / outpost.toml, `--env` | read, or a clear error; never a panic |
//! | frames | bytes on a sync stream | a frame, a clean end or an error, never more than the limit allocated; written frames read back |
//! | routes | a route pattern, a host, a path | accepted ⇒ its text parses to itself, matching never panics, the order is antisymmetric |
//! | policy | allow-list entries, an address, a host | an allowed address passes, `*.d` opens only names under `d`, and nothing is refused that no list refuses |

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use arbitrary::Unstructured;
use outpost_protocol::Bundle;
use outpost_protocol::route::RoutePattern;
use outpost_protocol::sync::{ControlMessage, MAX_FRAME_BYTES, read_frame, read_raw, write_raw};
use outpost_runtime::OutboundPolicy;
use serde_json::{Value, json};

/// How long each target runs on generated inputs.
fn budget() -> Duration {
  let seconds = std::env::var("OUTPOST_FUZZ_SECONDS")
    .ok()
    .and_then(|s| s.parse::<f64>().ok())
    .unwrap_or(2.0);
  Duration::from_secs_f64(seconds)
}

/// The committed corpus of `target`: file names and bytes.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
  let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
    .join("../fixtures/fuzz")
    .join(target);
  let mut files: Vec<_> = std::fs::read_dir(&dir)
    .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
    .filter_map(Result::ok)
    .map(|entry| entry.path())
    .filter(|path| path.is_file())
    .collect();
  files.sort();
  assert!(!files.is_empty(), "no corpus in {}", dir.display());
  files
    .into_iter()
    .map(|path| {
      let bytes = std::fs::read(&path).expect("corpus file");
      (path, bytes)
    })
    .collect()
}

/// Runs `generate` on random bytes for the budget; reports how many
/// inputs ran and how many of them the target accepted.
fn fuzz(target: &str, mut generate: impl FnMut(&mut Unstructured) -> arbitrary::Result<bool>) {
  let (mut runs, mut accepted) = (0u64, 0u64);
  arbtest::arbtest(|u| {
    runs += 1;
    accepted += u64::from(generate(u)?);
    Ok(())
  })
  .budget(budget())
  .run();
  eprintln!("fuzz {target}: {runs} inputs, {accepted} accepted");
}

/// A string drawn from `alphabet`, up to `max` characters.
fn text_from(u: &mut Unstructured, alphabet: &[&str], max: usize) -> arbitrary::Result<String> {
  let len = u.int_in_range(0..=max)?;
  let mut out = String::new();
  for _ in 0..len {
    out.push_str(u.choose(alphabet)?);
  }
  Ok(out)
}

// ---- bundle ----

fn check_bundle(bytes: &[u8]) -> bool {
  let Ok(bundle) = Bundle::from_json(bytes) else {
    return false;
  };
  for path in bundle.modules.keys() {
    let plain = !path.is_empty()
      && !path.contains('\\')
      && Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    assert!(plain, "accepted a module path that escapes: {path:?}");
  }
  if let Some(assets) = &bundle.assets {
    for (path, file) in &assets.files {
      assert!(
        outpost_protocol::bundle::is_sha256_hex(&file.hash),
        "accepted asset {path:?} with hash {:?}",
        file.hash
      );
    }
  }
  let stored = Bundle::from_stored(&bundle.canonical_bytes(), &bundle.hash())
    .expect("a bundle's canonical bytes read back");
  assert_eq!(stored, bundle);
  true
}

const PATH_PIECES: &[&str] = &[
  "a",
  "src",
  "index.js",
  "lib.ts",
  "/",
  "/",
  ".",
  "..",
  "\\",
  ":",
  "%2e",
  "\0",
  " ",
  "é",
  "C:",
  "node_modules",
  "~",
];

fn json_scalar(u: &mut Unstructured) -> arbitrary::Result<Value> {
  Ok(match u.int_in_range(0..=5)? {
    0 => Value::Null,
    1 => json!(u.arbitrary::<bool>()?),
    2 => json!(u.arbitrary::<i64>()?),
    3 => json!(u.arbitrary::<f64>()?),
    4 => json!(text_from(u, PATH_PIECES, 6)?),
    _ => json!(u.arbitrary::<String>()?),
  })
}

fn module_path(u: &mut Unstructured) -> arbitrary::Result<String> {
  if u.ratio(2, 3)? {
    Ok(
      u.choose(&["index.js", "src/lib.js", "a/b/c.mjs"])?
        .to_string(),
    )
  } else {
    text_from(u, PATH_PIECES, 6)
  }
}

fn generate_bundle(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
  let mut modules = BTreeMap::new();
  for _ in 0..u.int_in_range(0..=4)? {
    modules.insert(module_path(u)?, json!("export default {}"));
  }
  let main = match modules.keys().next() {
    Some(first) if u.ratio(4, 5)? => first.clone(),
    _ => module_path(u)?,
  };
  let mut bundle = json!({ "main": main, "modules": modules });
  let hash = |u: &mut Unstructured| -> arbitrary::Result<String> {
    Ok(if u.ratio(1, 2)? {
      outpost_protocol::bundle::sha256_hex(&[u.arbitrary::<u8>()?])
    } else {
      text_from(u, &["a", "0", "f", "../", "G"], 64)?
    })
  };
  let optional: [(&str, Value); 9] = [
    (
      "vars",
      json!({ text_from(u, &["A", "_", "1", "-", "é"], 4)?: json_scalar(u)? }),
    ),
    ("allow_eval", json_scalar(u)?),
    (
      "outbound_allow",
      json!([text_from(u, &["10.0.0.0/8", "*.", "a", "."], 3)?]),
    ),
    (
      "kv_namespaces",
      json!([{ "binding": text_from(u, &["KV", "_", "1", "-"], 3)?, "id": text_from(u, &["a", "0", "-", "/"], 8)? }]),
    ),
    (
      "compatibility_flags",
      json!(["nodejs_compat", text_from(u, PATH_PIECES, 2)?]),
    ),
    (
      "imports",
      json!({ module_path(u)?: { "x": module_path(u)? } }),
    ),
    (
      "crons",
      json!([text_from(
        u,
        &["*", " ", "1", "/", ",", "-", "MON", "60"],
        12
      )?]),
    ),
    (
      "assets",
      json!({ "files": { format!("/{}", module_path(u)?): { "hash": hash(u)?, "size": u.arbitrary::<u32>()? } } }),
    ),
    (
      "limits",
      json!({ "cpu_ms": json_scalar(u)?, "memory_mb": json_scalar(u)? }),
    ),
  ];
  for (key, value) in optional {
    if u.ratio(1, 3)? {
      bundle[key] = value;
    }
  }
  if u.ratio(1, 10)? {
    bundle[text_from(u, PATH_PIECES, 2)?] = json_scalar(u)?;
  }
  let mut bytes = serde_json::to_vec(&bundle).unwrap_or_default();
  // Now and then, damage the JSON itself.
  if u.ratio(1, 8)? && !bytes.is_empty() {
    let at = u.choose_index(bytes.len())?;
    bytes[at] = u.arbitrary()?;
  }
  Ok(bytes)
}

#[test]
fn fuzz_bundle() {
  for (path, bytes) in corpus("bundle") {
    eprintln!(
      "corpus {}: accepted {}",
      path.display(),
      check_bundle(&bytes)
    );
  }
  fuzz("bundle", |u| Ok(check_bundle(&generate_bundle(u)?)));
}

// ---- config ----

/// Writes `files` into a fresh folder and reads the project from it.
fn check_config(files: &[(&str, &[u8])], env: Option<&str>) -> bool {
  let dir = tempfile::tempdir().expect("temp dir");
  for (name, text) in files {
    std::fs::write(dir.path().join(name), text).expect("config file");
  }
  let read = outpost_edge::config::read_project(dir.path(), env);
  match read {
    Ok(Some(project)) => {
      let _ = project.kv_for_deploy();
      let _ = project.kv_for_local();
      let _ = project.nodejs_compat();
      true
    }
    Ok(None) => files.is_empty(),
    Err(err) => {
      assert!(!err.to_string().is_empty());
      false
    }
  }
}

const TOML_KEYS: &[&str] = &[
  "name",
  "main",
  "compatibility_date",
  "compatibility_flags",
  "workers_dev",
  "route",
  "routes",
  "account_id",
  "minify",
  "node_compat",
  "usage_model",
  "placement",
  "tail_consumers",
];
const TOML_SECTIONS: &[&str] = &[
  "[vars]",
  "[[kv_namespaces]]",
  "[assets]",
  "[triggers]",
  "[limits]",
  "[env.staging]",
  "[env.staging.vars]",
  "[[env.staging.kv_namespaces]]",
  "[observability]",
  "[[d1_databases]]",
  "[[r2_buckets]]",
  "[durable_objects]",
  "[[queues.producers]]",
  "[site]",
  "[build]",
  "[dev]",
];
const TOML_FIELDS: &[&str] = &[
  "binding",
  "id",
  "preview_id",
  "directory",
  "crons",
  "cpu_ms",
  "not_found_handling",
  "html_handling",
  "run_worker_first",
  "enabled",
  "bucket",
  "command",
  "port",
  "A",
  "B",
];

fn toml_value(u: &mut Unstructured) -> arbitrary::Result<String> {
  Ok(match u.int_in_range(0..=7)? {
    0 => format!(
      "{:?}",
      text_from(
        u,
        &["a", "./", "..", "src/index.ts", "*", "é", "\\", "KV"],
        4
      )?
    ),
    1 => u.arbitrary::<i64>()?.to_string(),
    2 => u.arbitrary::<bool>()?.to_string(),
    3 => format!("[{}]", toml_value(u)?),
    4 => format!(
      "{{ pattern = {:?}, zone_name = \"example.com\" }}",
      text_from(u, &["a", ".", "/", "*"], 6)?
    ),
    5 => "[\"*/5 * * * *\", \"nonsense\"]".to_owned(),
    6 => format!("{:?}", u.arbitrary::<String>()?),
    _ => text_from(u, &["=", "[", "]", "\"", "{", "}", ",", "x", "\n"], 4)?,
  })
}

fn generate_toml(u: &mut Unstructured) -> arbitrary::Result<String> {
  let mut text = String::new();
  for _ in 0..u.int_in_range(0..=12)? {
    match u.int_in_range(0..=3)? {
      0 => text.push_str(u.choose(TOML_SECTIONS)?),
      1 => text.push_str(&format!("{} = {}", u.choose(TOML_KEYS)?, toml_value(u)?)),
      2 => text.push_str(&format!("{} = {}", u.choose(TOML_FIELDS)?, toml_value(u)?)),
      _ => text.push_str(&u.arbitrary::<String>()?),
    }
    text.push('\n');
  }
  Ok(text)
}

fn generate_jsonc(u: &mut Unstructured) -> arbitrary::Result<String> {
  let mut object = serde_json::Map::new();
  for _ in 0..u.int_in_range(0..=6)? {
    let key = u.choose(TOML_KEYS)?.to_string();
    let value = match u.int_in_range(0..=3)? {
      0 => json_scalar(u)?,
      1 => json!([{ "binding": "KV", "id": text_from(u, &["a", "0"], 8)? }]),
      2 => json!({ "staging": { "vars": { "A": json_scalar(u)? } } }),
      _ => json!({ "directory": text_from(u, PATH_PIECES, 3)?, "binding": json_scalar(u)? }),
    };
    object.insert(key, value);
  }
  let mut text = serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default();
  if u.ratio(1, 2)? {
    text = format!("// a comment\n{text}");
  }
  if u.ratio(1, 4)? && text.ends_with('}') {
    text.insert(text.len() - 1, ',');
  }
  Ok(text)
}

#[test]
fn fuzz_config() {
  for (path, bytes) in corpus("config") {
    let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
    // `staging.wrangler.toml` is read as `wrangler.toml` under --env staging.
    let (env, name) = match name.split_once('.') {
      Some((env, rest)) if rest.starts_with("wrangler") || rest.starts_with("outpost") => {
        (Some(env), rest)
      }
      _ => (None, name),
    };
    let accepted = check_config(&[(name, &bytes)], env);
    eprintln!("corpus {}: accepted {accepted}", path.display());
  }
  fuzz("config", |u| {
    let mut files = Vec::new();
    match u.int_in_range(0..=2)? {
      0 => files.push(("wrangler.toml", generate_toml(u)?)),
      1 => files.push(("wrangler.jsonc", generate_jsonc(u)?)),
      _ => {
        files.push(("wrangler.toml", generate_toml(u)?));
        files.push(("outpost.toml", generate_toml(u)?));
      }
    }
    let env = u.choose(&[None, Some("staging"), Some("missing")])?;
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
    Ok(check_config(&files, *env))
  });
}

// ---- frames ----

/// Reads frames from `bytes` until the end or an error; returns how many
/// were whole frames.
fn check_frames(bytes: &[u8]) -> bool {
  let runtime = tokio::runtime::Builder::new_current_thread()
    .build()
    .expect("runtime");
  runtime.block_on(async {
    let mut typed = bytes;
    while let Ok(Some(_)) = read_frame::<_, ControlMessage>(&mut typed).await {}
    let mut raw = bytes;
    let mut whole = 0;
    while let Ok(Some(frame)) = read_raw(&mut raw).await {
      assert!(frame.len() <= MAX_FRAME_BYTES);
      whole += 1;
    }
    whole > 0
  })
}

fn generate_frames(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
  let messages = [
    json!({ "type": "state", "epoch": u.arbitrary::<u64>()?, "workers": [], "routes": [] }),
    json!({ "type": "kv_invalidate", "namespace": "n", "keys": [u.arbitrary::<String>()?] }),
    json!({ "type": "kv_flush" }),
    json!({ "type": "tail", "workers": [u.arbitrary::<String>()?] }),
    json_scalar(u)?,
  ];
  let mut out = Vec::new();
  for _ in 0..u.int_in_range(0..=4)? {
    match u.int_in_range(0..=3)? {
      0 => {
        let body = serde_json::to_vec(u.choose(&messages)?).unwrap_or_default();
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&body);
      }
      // A length the body does not have, or over the limit.
      1 => {
        out.extend_from_slice(&u.arbitrary::<u32>()?.to_be_bytes());
        let len = u.int_in_range(0..=16)?;
        out.extend_from_slice(u.bytes(len)?);
      }
      2 => out.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_be_bytes()),
      _ => {
        let len = u.int_in_range(0..=8)?;
        out.extend_from_slice(u.bytes(len)?);
      }
    }
  }
  Ok(out)
}

#[test]
fn fuzz_frames() {
  for (path, bytes) in corpus("frames") {
    eprintln!(
      "corpus {}: whole frames {}",
      path.display(),
      check_frames(&bytes)
    );
  }
  fuzz("frames", |u| Ok(check_frames(&generate_frames(u)?)));
  // And what is written reads back.
  fuzz("frames round trip", |u| {
    let frames: Vec<Vec<u8>> = u.arbitrary()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
      .build()
      .expect("runtime");
    runtime.block_on(async {
      let mut wire = Vec::new();
      for frame in &frames {
        write_raw(&mut wire, frame).await.expect("write");
      }
      let mut reader = wire.as_slice();
      for frame in &frames {
        let read = read_raw(&mut reader).await.expect("read");
        assert_eq!(read.as_ref(), Some(frame));
      }
      assert!(read_raw(&mut reader).await.expect("the end").is_none());
    });
    Ok(true)
  });
}

// ---- routes ----

fn check_route(pattern: &str, other: &str, host: &str, path: &str) -> bool {
  let Ok(parsed) = RoutePattern::parse(pattern) else {
    return false;
  };
  let again = RoutePattern::parse(&parsed.to_string())
    .unwrap_or_else(|err| panic!("{pattern:?} printed as {parsed} does not parse: {err}"));
  assert_eq!(again, parsed, "{pattern:?}");
  let _ = parsed.matches(host, path);
  if let Ok(other) = RoutePattern::parse(other) {
    assert_eq!(
      RoutePattern::most_specific_first(&parsed, &other),
      RoutePattern::most_specific_first(&other, &parsed).reverse()
    );
  }
  true
}

const ROUTE_PIECES: &[&str] = &[
  "*", "*.", ".", "/", "a", "example", ".com", ":", "8080", "[", "]", "::1", "%", "é", " ", "-",
  "?", "#", "://", "A",
];

#[test]
fn fuzz_routes() {
  for (path, bytes) in corpus("routes") {
    let text = String::from_utf8_lossy(&bytes);
    for pattern in text.lines() {
      let accepted = check_route(pattern, "*/*", "api.example.com:8443", "/v1/x");
      eprintln!("corpus {}: {pattern:?} accepted {accepted}", path.display());
    }
  }
  fuzz("routes", |u| {
    let pattern = text_from(u, ROUTE_PIECES, 10)?;
    let other = text_from(u, ROUTE_PIECES, 10)?;
    let host = text_from(u, ROUTE_PIECES, 6)?;
    let path = text_from(u, ROUTE_PIECES, 6)?;
    Ok(check_route(&pattern, &other, &host, &path))
  });
}

// ---- outbound address policy ----

fn check_policy(entries: &[String], ip: IpAddr, host: &str) -> bool {
  let Ok(policy) = OutboundPolicy::parse(entries) else {
    return false;
  };
  let default = OutboundPolicy::default();
  if default.check_ip(ip).is_ok() {
    assert!(
      policy.check_ip(ip).is_ok(),
      "{entries:?} refuses public {ip}"
    );
  }
  for entry in entries {
    let entry = entry.trim();
    if let Ok(listed) = entry
      .trim_start_matches('[')
      .trim_end_matches(']')
      .parse::<IpAddr>()
    {
      assert!(
        policy.check_ip(listed).is_ok(),
        "{entries:?} refuses {listed}, which it lists"
      );
    }
    if let Some(domain) = entry.strip_prefix("*.") {
      let domain = domain.trim_end_matches('.').to_ascii_lowercase();
      let name = host.trim_end_matches('.').to_ascii_lowercase();
      let only_this_entry = OutboundPolicy::parse(&[entry]).expect("one entry of a valid list");
      if only_this_entry.allows_host(host) {
        assert!(
          name.ends_with(&format!(".{domain}")),
          "{entry:?} opens {host:?}"
        );
      }
    }
  }
  // An IPv4 address and its IPv4-mapped IPv6 form are one address.
  if let IpAddr::V4(v4) = ip {
    assert_eq!(
      policy.check_ip(ip).is_ok(),
      policy.check_ip(IpAddr::V6(v4.to_ipv6_mapped())).is_ok(),
      "{entries:?}: {ip}"
    );
  }
  let _ = policy.allows_host(host);
  true
}

fn generate_ip(u: &mut Unstructured) -> arbitrary::Result<IpAddr> {
  let interesting = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
    IpAddr::V6("fd00::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)),
    IpAddr::V6("64:ff9b::7f00:1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)),
  ];
  Ok(match u.int_in_range(0..=2)? {
    0 => *u.choose(&interesting)?,
    1 => IpAddr::V4(Ipv4Addr::from(u.arbitrary::<u32>()?)),
    _ => IpAddr::V6(Ipv6Addr::from(u.arbitrary::<u128>()?)),
  })
}

fn generate_entry(u: &mut Unstructured, ip: IpAddr) -> arbitrary::Result<String> {
  Ok(match u.int_in_range(0..=4)? {
    0 => ip.to_string(),
    1 => format!("{ip}/{}", u.int_in_range(0..=130)?),
    2 => format!("[{ip}]"),
    3 => format!(
      "*.{}",
      text_from(u, &["a", "b", ".", "-", "_", "é", "corp", "example"], 5)?
    ),
    _ => text_from(
      u,
      &["a", ".", "*", "/", ":", "1", "0", "[", "]", " ", "ff"],
      8,
    )?,
  })
}

#[test]
fn fuzz_policy() {
  for (path, bytes) in corpus("policy") {
    let text = String::from_utf8_lossy(&bytes);
    let entries: Vec<String> = text.lines().map(str::to_owned).collect();
    for ip in ["127.0.0.1", "10.0.0.1", "::ffff:10.0.0.1", "8.8.8.8", "::1"] {
      let ip: IpAddr = ip.parse().expect("an address");
      check_policy(&entries, ip, "api.corp.example");
    }
    eprintln!("corpus {}: {} entries", path.display(), entries.len());
  }
  fuzz("policy", |u| {
    let ip = generate_ip(u)?;
    let mut entries = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
      let seed = generate_ip(u)?;
      let base = if u.ratio(1, 2)? { ip } else { seed };
      entries.push(generate_entry(u, base)?);
    }
    let host = text_from(u, &["a", "b", ".", "corp", "example", "-", "A", ""], 6)?;
    Ok(check_policy(&entries, ip, &host))
  });
}
