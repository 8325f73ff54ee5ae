//! `outpost deploy`'s static assets: the `[assets]` folder read into the
//! version's manifest, and the bytes the control plane lacks uploaded
//! first, once per content hash, with a progress line.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use outpost_edge::assets::{self, ScannedAssets};
use outpost_edge::config::AssetsConfig;
use outpost_protocol::assets::AssetManifest;
use reqwest::Method;
use serde_json::json;

use super::api::Api;

/// Reads the project's `[assets]` folder (relative to `root`) into a
/// manifest served as the config says, and where each file is.
pub fn read(root: &Path, config: &AssetsConfig) -> anyhow::Result<Option<ScannedAssets>> {
  let Some(directory) = &config.directory else {
    eprintln!("warning: [assets] has no `directory`; no static assets are uploaded");
    return Ok(None);
  };
  let mut scanned = assets::scan(&root.join(directory))?;
  scanned.manifest = AssetManifest {
    files: std::mem::take(&mut scanned.manifest.files),
    ..config.serving.clone()
  };
  Ok(Some(scanned))
}

fn megabytes(bytes: u64) -> String {
  format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Uploads the files the control plane lacks; prints what it did.
pub async fn upload(api: &Api, scanned: &ScannedAssets) -> anyhow::Result<()> {
  // One path per hash: identical files travel once.
  let mut by_hash: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
  for (path, file) in &scanned.manifest.files {
    by_hash
      .entry(file.hash.as_str())
      .or_insert((path.as_str(), file.size));
  }
  let hashes: Vec<&str> = by_hash.keys().copied().collect();
  let answer = api
    .send(
      Method::POST,
      "/assets/missing",
      &json!({ "hashes": hashes }),
    )
    .await?;
  let missing: Vec<String> = serde_json::from_value(answer["missing"].clone())
    .context("the control plane's answer lists no missing assets")?;
  let total: u64 = missing
    .iter()
    .filter_map(|hash| by_hash.get(hash.as_str()))
    .map(|(_, size)| size)
    .sum();
  let live = std::io::stderr().is_terminal();
  let mut sent = 0u64;
  for (done, hash) in missing.iter().enumerate() {
    let Some((path, size)) = by_hash.get(hash.as_str()) else {
      continue;
    };
    let on_disk = scanned
      .paths
      .get(*path)
      .with_context(|| format!("{path} is not in the assets folder"))?;
    let bytes = std::fs::read(on_disk).with_context(|| format!("reading {}", on_disk.display()))?;
    if outpost_protocol::bundle::sha256_hex(&bytes) != *hash {
      anyhow::bail!(
        "{} changed while it was being uploaded; deploy again",
        on_disk.display()
      );
    }
    api
      .raw(
        Method::PUT,
        &format!("/assets/{hash}"),
        Some(bytes),
        &[("content-type", "application/octet-stream".to_owned())],
      )
      .await
      .with_context(|| format!("uploading {path}"))?;
    sent += size;
    if live {
      eprint!(
        "\ruploading assets: {}/{} files, {} of {}",
        done + 1,
        missing.len(),
        megabytes(sent),
        megabytes(total)
      );
      let _ = std::io::stderr().flush();
    }
  }
  if live && !missing.is_empty() {
    eprintln!();
  }
  println!(
    "assets: {} file(s), {} uploaded ({} bytes), {} unchanged",
    scanned.manifest.files.len(),
    missing.len(),
    sent,
    by_hash.len() - missing.len()
  );
  Ok(())
}
