//! The developer's commands against the control plane: `login`, `deploy`,
//! `versions`, `rollback` and `routes`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use outpost_edge::assets::ScannedAssets;
use outpost_edge::config::{Project, read_project, read_project_config};
use outpost_protocol::Bundle;
use outpost_runtime::WorkerBundle;
use outpost_runtime::resolve::{ProjectResolver, plain_relative};
use reqwest::Method;
use serde_json::{Value, json};

use super::api::{Api, ApiArgs, save_credentials};
use super::dispatch::worker_path;

/// Entry modules looked for when `outpost.toml` names none.
const DEFAULT_ENTRIES: [&str; 2] = ["worker.js", "worker.ts"];

/// Arguments of `outpost login`.
#[derive(Args)]
pub struct LoginArgs {
  /// The control plane's API URL, e.g. http://control.example:8787.
  #[arg(long)]
  url: String,
  /// An API token (from the control plane's first start or `outpost
  /// control token create`).
  #[arg(long, env = "OUTPOST_TOKEN", hide_env_values = true)]
  token: String,
}

/// Arguments of `outpost deploy`.
#[derive(Args)]
pub struct DeployArgs {
  /// The worker's entry module or folder (default: ./outpost.toml's `main`).
  target: Option<PathBuf>,
  /// The worker's name (default: `name` in outpost.toml).
  #[arg(long)]
  name: Option<String>,
  /// A route pattern for the worker, e.g. api.example.com/* (repeatable;
  /// adds to `routes` in outpost.toml).
  #[arg(long = "route", value_name = "PATTERN")]
  routes: Vec<String>,
  /// How long to wait for every edge to serve the new version.
  #[arg(long, default_value = "30", value_name = "SECONDS")]
  timeout: u64,
  /// The config environment (`[env.<name>]`): the worker is named
  /// `<name>-<env>` unless the environment names it.
  #[arg(long, short = 'e', value_name = "NAME")]
  env: Option<String>,
  /// Upload as a user worker of this dispatch namespace: reached only
  /// through a dispatcher's `[[dispatch_namespaces]]` binding, never by a
  /// route (its routes are ignored).
  #[arg(long, value_name = "NAMESPACE")]
  dispatch_namespace: Option<String>,
  #[command(flatten)]
  api: ApiArgs,
}

/// Arguments of `outpost delete` and `outpost rollback`.
#[derive(Args)]
pub struct WorkerArgs {
  /// The worker (default: `name` in ./outpost.toml).
  #[arg(long)]
  name: Option<String>,
  /// The dispatch namespace the worker is a user worker of, if it is one.
  #[arg(long, value_name = "NAMESPACE")]
  dispatch_namespace: Option<String>,
  /// How long `rollback` waits for every edge.
  #[arg(long, default_value = "30", value_name = "SECONDS")]
  timeout: u64,
  #[command(flatten)]
  api: ApiArgs,
}

/// Arguments of `outpost edges`.
#[derive(Args)]
pub struct EdgesArgs {
  #[command(subcommand)]
  command: EdgesCommand,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum EdgesCommand {
  /// List the enrolled edge nodes, when each was last heard from and the
  /// epoch it serves.
  List,
  /// Remove an edge node: its connection is closed and its certificate no
  /// longer gets it in (it keeps serving what it has).
  Remove {
    /// The node's id (edge-...).
    id: String,
  },
}

/// Arguments of `outpost routes`.
#[derive(Args)]
pub struct RoutesArgs {
  #[command(subcommand)]
  command: RoutesCommand,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum RoutesCommand {
  /// List every route.
  List,
  /// Route a pattern (api.example.com/*, *.example.com/v1/*) to a worker.
  Add {
    /// The pattern.
    pattern: String,
    /// The worker (default: `name` in ./outpost.toml).
    #[arg(long)]
    name: Option<String>,
  },
  /// Remove a route.
  Remove {
    /// The pattern.
    pattern: String,
  },
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
  tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .context("starting Tokio")
}

/// `outpost login`: checks the token against the control plane and saves it.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
  runtime()?.block_on(async {
    let api = Api::at(&args.url, &args.token);
    api.call(Method::GET, "/state", None).await?;
    let path = save_credentials(api.base(), &args.token)?;
    println!(
      "logged in to {}; credentials in {}",
      api.base(),
      path.display()
    );
    Ok(())
  })
}

/// Arguments of `outpost whoami`.
#[derive(Args)]
pub struct WhoamiArgs {
  #[command(flatten)]
  api: ApiArgs,
}

/// `outpost whoami`: the control plane the CLI talks to, and its token.
pub fn whoami(args: WhoamiArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  runtime()?.block_on(async {
    let token = api.call(Method::GET, "/whoami", None).await?;
    let label = token["label"]
      .as_str()
      .filter(|l| !l.is_empty())
      .unwrap_or("no label");
    println!(
      "{} with token #{} ({label}), scope {}",
      api.base(),
      token["id"],
      token["scope"].as_str().unwrap_or("?")
    );
    Ok(())
  })
}

/// The worker name from a flag or ./outpost.toml.
pub(super) fn worker_name(flag: Option<String>) -> anyhow::Result<String> {
  if let Some(name) = flag {
    return Ok(name);
  }
  let config = read_project_config(Path::new("."))?;
  config
    .and_then(|c| c.name)
    .context("which worker? pass --name, or run where an outpost.toml has `name = ...`")
}

/// `outpost deploy`: uploads the worker, activates it, sets its routes and
/// shows each edge node picking it up.
pub fn deploy(args: DeployArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let (name, bundle, mut routes, assets) = build_bundle(
    args.target.as_deref(),
    args.name,
    args.routes,
    args.env.as_deref(),
  )?;
  let namespace = args.dispatch_namespace.as_deref();
  if namespace.is_some() && !routes.is_empty() {
    eprintln!(
      "warning: routes ignored ({}): a user worker of a dispatch namespace is reached only through its dispatcher",
      routes.join(", ")
    );
    routes.clear();
  }
  let path = worker_path(namespace, &name);
  let shown = match namespace {
    Some(namespace) => format!("{name} (dispatch namespace {namespace})"),
    None => name.clone(),
  };
  runtime()?.block_on(async {
    if let Some(assets) = &assets {
      super::deploy_assets::upload(&api, assets).await?;
    }
    let uploaded = api
      .call(
        Method::POST,
        &format!("{path}/versions"),
        Some(serde_json::to_vec(&bundle)?),
      )
      .await?;
    let number = uploaded["version"]["number"]
      .as_u64()
      .context("the upload answer has no version number")?;
    let note = if uploaded["created"] == json!(false) {
      " (unchanged)"
    } else {
      ""
    };
    println!(
      "uploaded {shown} v{number}{note}, {} module(s)",
      bundle.modules.len()
    );
    let deployed = api
      .send(
        Method::POST,
        &format!("{path}/deployments"),
        &json!({ "version": number }),
      )
      .await?;
    let mut epoch = deployed["deployment"]["epoch"]
      .as_u64()
      .context("the deployment has no epoch")?;
    for pattern in &routes {
      epoch = epoch.max(add_route(&api, pattern, &name).await?);
    }
    wait_for_edges(
      &api,
      epoch,
      &format!("v{number}"),
      Duration::from_secs(args.timeout),
    )
    .await
  })
}

/// `outpost rollback`: redeploys what served before, and waits for edges.
pub fn rollback(args: WorkerArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let name = worker_name(args.name)?;
  let path = worker_path(args.dispatch_namespace.as_deref(), &name);
  runtime()?.block_on(async {
    let answer = api
      .call(Method::POST, &format!("{path}/rollback"), None)
      .await?;
    let deployment = &answer["deployment"];
    let label = describe_shares(&deployment["shares"]);
    println!("rolled {name} back to {label}");
    let epoch = deployment["epoch"]
      .as_u64()
      .context("the deployment has no epoch")?;
    wait_for_edges(&api, epoch, &label, Duration::from_secs(args.timeout)).await
  })
}

/// `outpost delete`: stops serving the worker everywhere; its versions stay.
pub fn delete(args: WorkerArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let name = worker_name(args.name)?;
  let path = worker_path(args.dispatch_namespace.as_deref(), &name);
  runtime()?.block_on(async {
    let answer = api.call(Method::DELETE, &path, None).await?;
    println!("{name} is no longer served; its versions are kept (`outpost rollback` brings it back, without its routes)");
    let epoch = answer["deployment"]["epoch"].as_u64().context("the answer has no epoch")?;
    wait_for_edges(&api, epoch, &format!("the removal of {name}"), Duration::from_secs(args.timeout)).await
  })
}

/// `outpost routes`.
pub fn routes(args: RoutesArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  runtime()?.block_on(async {
    match args.command {
      RoutesCommand::List => {
        let answer = api.call(Method::GET, "/routes", None).await?;
        for route in answer["routes"].as_array().into_iter().flatten() {
          println!(
            "{} -> {}",
            route["pattern"].as_str().unwrap_or(""),
            route["worker"].as_str().unwrap_or("")
          );
        }
      }
      RoutesCommand::Add { pattern, name } => {
        add_route(&api, &pattern, &worker_name(name)?).await?;
      }
      RoutesCommand::Remove { pattern } => {
        api
          .send(Method::DELETE, "/routes", &json!({ "pattern": pattern }))
          .await?;
        println!("route {pattern} removed");
      }
    }
    Ok(())
  })
}

/// `outpost edges`.
pub fn edges(args: EdgesArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  runtime()?.block_on(async {
    match args.command {
      EdgesCommand::List => {
        let answer = api.call(Method::GET, "/edges", None).await?;
        let now = std::time::SystemTime::now()
          .duration_since(std::time::UNIX_EPOCH)
          .map_or(0, |d| d.as_secs() as i64);
        println!("{:<22} {:<20} {:>8}  last seen", "id", "name", "epoch");
        for edge in answer["edges"].as_array().into_iter().flatten() {
          let seen = edge["last_seen"].as_i64().map_or("never".to_owned(), |at| {
            format!("{} s ago", (now - at).max(0))
          });
          println!(
            "{:<22} {:<20} {:>8}  {seen}",
            edge["id"].as_str().unwrap_or(""),
            edge["name"].as_str().unwrap_or(""),
            edge["epoch"].as_u64().unwrap_or(0)
          );
        }
      }
      EdgesCommand::Remove { id } => {
        api
          .call(Method::DELETE, &format!("/edges/{id}"), None)
          .await?;
        println!("edge node {id} removed");
      }
    }
    Ok(())
  })
}

/// Routes `pattern` to `worker`, says so, and returns the epoch it made.
async fn add_route(api: &Api, pattern: &str, worker: &str) -> anyhow::Result<u64> {
  let answer = api
    .send(
      Method::PUT,
      "/routes",
      &json!({ "pattern": pattern, "worker": worker }),
    )
    .await?;
  let pattern = answer["route"]["pattern"].as_str().unwrap_or(pattern);
  println!("route {pattern} -> {worker}");
  Ok(answer["epoch"].as_u64().unwrap_or(0))
}

/// `v3`, or `v3 90% + v2 10%`.
pub(super) fn describe_shares(shares: &Value) -> String {
  let shares: Vec<(u64, u64)> = shares
    .as_array()
    .into_iter()
    .flatten()
    .filter_map(|s| Some((s["version"].as_u64()?, s["percent"].as_u64()?)))
    .collect();
  match shares.as_slice() {
    [] => "nothing (the worker was removed)".to_owned(),
    [(version, _)] => format!("v{version}"),
    _ => shares
      .iter()
      .map(|(v, p)| format!("v{v} {p}%"))
      .collect::<Vec<_>>()
      .join(" + "),
  }
}

/// Shows how many edges serve `epoch` until all do, or fails after
/// `timeout` naming the ones that have not.
pub(super) async fn wait_for_edges(
  api: &Api,
  epoch: u64,
  label: &str,
  timeout: Duration,
) -> anyhow::Result<()> {
  let started = Instant::now();
  let live = std::io::stdout().is_terminal();
  loop {
    let answer = api.call(Method::GET, "/edges", None).await?;
    let edges = answer["edges"].as_array().cloned().unwrap_or_default();
    if edges.is_empty() {
      println!("no edge nodes are enrolled yet; they get {label} when they join");
      return Ok(());
    }
    let behind: Vec<String> = edges
      .iter()
      .filter(|e| e["epoch"].as_u64().unwrap_or(0) < epoch)
      .map(|e| {
        format!(
          "{} ({})",
          e["name"].as_str().unwrap_or("?"),
          e["id"].as_str().unwrap_or("?")
        )
      })
      .collect();
    let line = format!(
      "{}/{} edges serving {label} in {} ms",
      edges.len() - behind.len(),
      edges.len(),
      started.elapsed().as_millis()
    );
    if behind.is_empty() {
      if live {
        print!("\r\x1b[2K");
      }
      println!("{line}");
      return Ok(());
    }
    if started.elapsed() > timeout {
      if live {
        println!();
      }
      bail!(
        "{line}; not yet after {} s: {}",
        timeout.as_secs(),
        behind.join(", ")
      );
    }
    if live {
      print!("\r\x1b[2K{line}");
      let _ = std::io::stdout().flush();
    }
    tokio::time::sleep(Duration::from_millis(25)).await;
  }
}

/// The worker's name, bundle and routes from the target (an entry module,
/// a folder, or ./outpost.toml) and the flags.
fn build_bundle(
  target: Option<&Path>,
  name: Option<String>,
  mut routes: Vec<String>,
  env: Option<&str>,
) -> anyhow::Result<(String, Bundle, Vec<String>, Option<ScannedAssets>)> {
  let (root, entry, config) = match target {
    None => {
      let config = read_project(Path::new("."), env)?.context(
        "no entry given and no ./outpost.toml or ./wrangler.toml: pass the worker's entry module or folder",
      )?;
      (PathBuf::from("."), None, config)
    }
    Some(dir) if dir.is_dir() => (
      dir.to_owned(),
      None,
      read_project(dir, env)?.unwrap_or_default(),
    ),
    Some(file) if file.is_file() => {
      let root = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
      let config = read_project(&root, env)?.unwrap_or_default();
      (root, Some(file.to_owned()), config)
    }
    Some(missing) => bail!("{} is neither a file nor a folder", missing.display()),
  };
  let root =
    std::fs::canonicalize(&root).with_context(|| format!("resolving {}", root.display()))?;
  let assets_only = entry.is_none()
    && config.main.is_none()
    && config
      .assets
      .as_ref()
      .is_some_and(|a| a.directory.is_some())
    && !DEFAULT_ENTRIES.iter().any(|e| root.join(e).is_file());
  let entry = match entry.or_else(|| config.main.as_ref().map(|main| root.join(main))) {
    Some(entry) => entry,
    None if assets_only => outpost_edge::assets::assets_only_entry(&root)?,
    None => DEFAULT_ENTRIES
      .iter()
      .map(|e| root.join(e))
      .find(|p| p.is_file())
      .with_context(|| {
        format!(
          "{}: no worker.js or worker.ts, and no config file names a `main`",
          root.display()
        )
      })?,
  };
  let entry =
    std::fs::canonicalize(&entry).with_context(|| format!("resolving {}", entry.display()))?;
  let kv_namespaces = config.kv_for_deploy().map_err(anyhow::Error::msg)?;
  let mut assets = match &config.assets {
    Some(assets) => super::deploy_assets::read(&root, assets)?,
    None => None,
  };
  if let Some(assets) = &mut assets {
    assets.manifest.has_worker = !assets_only;
  }
  let resolver = ProjectResolver::new(config.nodejs_compat());
  let Project {
    compatibility_date,
    compatibility_flags,
    name: config_name,
    routes: config_routes,
    vars,
    limits,
    allow_eval,
    outbound_allow,
    crons,
    services,
    dispatch_namespaces,
    ..
  } = config;
  let name = name.or(config_name).context(
    "name the worker: pass --name, or put `name = \"...\"` in outpost.toml or wrangler.toml",
  )?;
  routes.splice(0..0, config_routes);
  // Loading it the way an edge does checks every module and finds its imports.
  let loaded = WorkerBundle::load_with(&entry, &resolver)?;
  let relative = |path: &Path| -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let relative = path.strip_prefix(&root).with_context(|| {
      format!(
        "{} is outside the worker's folder {}",
        path.display(),
        root.display()
      )
    })?;
    let parts: Vec<String> = relative
      .components()
      .map(|c| c.as_os_str().to_string_lossy().into_owned())
      .collect();
    Ok(parts.join("/"))
  };
  let mut modules = BTreeMap::new();
  for file in loaded.files() {
    let source =
      std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    modules.insert(relative(&file)?, source);
  }
  // Where imports resolved, for those a relative URL does not give.
  let mut imports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
  for (referrer, resolved) in loaded.imports() {
    let Ok(referrer_path) = referrer.to_file_path() else {
      continue;
    };
    for (written, target) in resolved {
      let plain = plain_relative(written, referrer);
      if plain.as_ref() == Some(target) {
        continue;
      }
      let target = match target.to_file_path() {
        Ok(path) => relative(&path)?,
        Err(()) => target.to_string(),
      };
      imports
        .entry(relative(&referrer_path)?)
        .or_default()
        .insert(written.clone(), target);
    }
  }
  let bundle = Bundle {
    compatibility_date,
    compatibility_flags,
    imports,
    main: relative(&entry)?,
    modules,
    vars,
    limits,
    allow_eval,
    outbound_allow,
    kv_namespaces,
    services,
    dispatch_namespaces,
    crons,
    assets: assets.as_ref().map(|a| a.manifest.clone()),
  };
  bundle.validate()?;
  Ok((name, bundle, routes, assets))
}
