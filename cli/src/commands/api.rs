//! Talking to the control plane's API: where it is and the token to use
//! (flags, then `OUTPOST_URL`/`OUTPOST_TOKEN`, then what `outpost login`
//! saved), and calls that turn the API's JSON errors into messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;
use serde_json::Value;

/// Where the control plane is, for every command that talks to it.
#[derive(Args, Clone)]
pub struct ApiArgs {
  /// The control plane's API URL (default: what `outpost login` saved).
  #[arg(long, env = "OUTPOST_URL", global = true)]
  url: Option<String>,

  /// An API token (default: what `outpost login` saved).
  #[arg(long, env = "OUTPOST_TOKEN", hide_env_values = true, global = true)]
  token: Option<String>,
}

/// Saved credentials: `outpost login` writes them.
#[derive(serde::Serialize, serde::Deserialize)]
struct Credentials {
  url: String,
  token: String,
}

/// The file `outpost login` writes: `$OUTPOST_CONFIG_DIR`, or
/// `$XDG_CONFIG_HOME/outpost`, or `~/.config/outpost`, then
/// `credentials.json`.
pub fn credentials_path() -> anyhow::Result<PathBuf> {
  let dir = if let Some(dir) = std::env::var_os("OUTPOST_CONFIG_DIR") {
    PathBuf::from(dir)
  } else if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
    PathBuf::from(dir).join("outpost")
  } else if let Some(home) = std::env::var_os("HOME") {
    PathBuf::from(home).join(".config").join("outpost")
  } else {
    bail!("no HOME, XDG_CONFIG_HOME or OUTPOST_CONFIG_DIR to keep credentials in");
  };
  Ok(dir.join("credentials.json"))
}

/// Saves credentials readable by the owner only.
pub fn save_credentials(url: &str, token: &str) -> anyhow::Result<PathBuf> {
  let path = credentials_path()?;
  if let Some(dir) = path.parent() {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
  }
  let bytes = serde_json::to_vec_pretty(&Credentials {
    url: url.to_owned(),
    token: token.to_owned(),
  })?;
  let mut options = std::fs::OpenOptions::new();
  options.write(true).create(true).truncate(true);
  #[cfg(unix)]
  std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
  let mut file = options
    .open(&path)
    .with_context(|| format!("writing {}", path.display()))?;
  // A file saved before with wider permissions is narrowed too.
  #[cfg(unix)]
  file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
  std::io::Write::write_all(&mut file, &bytes)?;
  Ok(path)
}

/// A control plane's API, with a token.
pub struct Api {
  base: String,
  token: String,
  client: reqwest::Client,
}

impl Api {
  /// The API the flags, the environment or the saved credentials name.
  pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
    let saved = || -> anyhow::Result<Option<Credentials>> {
      let path = credentials_path()?;
      match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
          serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
      }
    };
    let (url, token) = match (&args.url, &args.token) {
      (Some(url), Some(token)) => (url.clone(), token.clone()),
      (url, token) => {
        let saved = saved()?;
        let url = url
          .clone()
          .or_else(|| saved.as_ref().map(|c| c.url.clone()));
        let token = token
          .clone()
          .or_else(|| saved.as_ref().map(|c| c.token.clone()));
        match (url, token) {
          (Some(url), Some(token)) => (url, token),
          _ => bail!(
            "which control plane? run `outpost login --url <URL> --token <TOKEN>`, or pass --url and --token (or OUTPOST_URL and OUTPOST_TOKEN)"
          ),
        }
      }
    };
    Ok(Self::at(&url, &token))
  }

  /// The API at `url` with `token`.
  pub fn at(url: &str, token: &str) -> Self {
    let base = url.trim_end_matches('/').trim_end_matches("/v1").to_owned();
    Self {
      base,
      token: token.to_owned(),
      client: reqwest::Client::new(),
    }
  }

  /// The API's address, for messages.
  pub fn base(&self) -> &str {
    &self.base
  }

  /// Calls `method /v1<path>` with `body` as JSON.
  pub async fn send(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
    self
      .call(method, path, Some(body.to_string().into_bytes()))
      .await
  }

  /// Calls `method /v1<path>` with an optional JSON body; an error answer
  /// becomes an error naming the API's message.
  pub async fn call(
    &self,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
  ) -> anyhow::Result<Value> {
    let headers = [("content-type", "application/json".to_owned())];
    let headers = if body.is_some() { &headers[..] } else { &[] };
    let (_, bytes) = self.raw(method, path, body, headers).await?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} answered without JSON", self.base))
  }

  /// Opens `GET /v1<path>` and returns the response to read as a stream;
  /// an error answer becomes an error naming the API's message.
  pub async fn open(&self, path: &str) -> anyhow::Result<reqwest::Response> {
    let response = self
      .client
      .get(format!("{}/v1{path}", self.base))
      .bearer_auth(&self.token)
      .send()
      .await
      .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
    let status = response.status();
    if !status.is_success() {
      let bytes = response.bytes().await.context("reading the answer")?;
      let value: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} answered {status} without JSON", self.base))?;
      let message = value["error"]["message"]
        .as_str()
        .unwrap_or("no reason given");
      bail!("GET {path}: {message} ({status})");
    }
    Ok(response)
  }

  /// Calls `method /v1<path>` with a raw body and extra headers, and
  /// returns the answer's headers and raw body; an error answer becomes an
  /// error naming the API's message.
  pub async fn raw(
    &self,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, String)],
  ) -> anyhow::Result<(reqwest::header::HeaderMap, Vec<u8>)> {
    let mut request = self
      .client
      .request(method.clone(), format!("{}/v1{path}", self.base))
      .bearer_auth(&self.token);
    for (name, value) in headers {
      request = request.header(*name, value);
    }
    if let Some(body) = body {
      request = request.body(body);
    }
    let response = request
      .send()
      .await
      .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
    let status = response.status();
    let answer_headers = response.headers().clone();
    let bytes = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
      let value: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} answered {status} without JSON", self.base))?;
      let message = value["error"]["message"]
        .as_str()
        .unwrap_or("no reason given");
      let code = value["error"]["code"].as_str().unwrap_or("error");
      bail!("{method} {path}: {message} ({status}, {code})");
    }
    Ok((answer_headers, bytes.to_vec()))
  }
}
