//! `outpost dev`: serve one worker from local files with hot reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use outpost_control::kv::StoreKv;
use outpost_edge::assets::{self, AssetCache, AssetSite};
use outpost_edge::config::{dev_vars_file, kv_env, read_dev_vars, read_worker_settings};
use outpost_edge::scheduled::{fire_on_schedule, now_ms};
use outpost_edge::services::ServiceRouter;
use outpost_edge::{RouteTable, Routes};
use outpost_protocol::KvBackend;
use outpost_runtime::{OutboundPolicy, WorkerEnv};

use super::dev_workers;
use super::kv::{local_state_dir, open_local_store};
use super::node::{ServeArgs, shutdown_signal};

/// Arguments of `outpost dev`.
#[derive(Args)]
pub struct DevArgs {
  /// The worker's entry module (.js, .mjs or .ts) or project folder;
  /// default: `main` in ./outpost.toml or ./wrangler.toml (.jsonc, .json),
  /// or ./worker.js or ./worker.ts. The config beside the entry is read for
  /// vars, KV bindings and limits, and `.dev.vars` there adds secrets to
  /// `env`.
  entry: Option<PathBuf>,

  /// More workers to run beside it (`outpost dev a/ b/`), each a project
  /// folder or entry module: reached through service bindings, at
  /// `<name>.localhost` or under `/<name>/`; the first gets every other
  /// request.
  others: Vec<PathBuf>,

  /// A user worker of a dispatch namespace, as NAMESPACE=FOLDER: reached
  /// only through a `[[dispatch_namespaces]]` binding's `get(name)`, by
  /// its config's `name` (else its folder's). Repeatable.
  #[arg(long = "user-worker", value_name = "NAMESPACE=FOLDER")]
  user_workers: Vec<String>,

  /// The config environment (`[env.<name>]`), as wrangler's `--env`; also
  /// picks `.dev.vars.<name>` over `.dev.vars`.
  #[arg(long, short = 'e', value_name = "NAME")]
  env: Option<String>,

  /// Port to listen on (0 picks a free one).
  #[arg(long, default_value_t = 8787)]
  port: u16,

  /// A plain var for `env`, as KEY=VALUE, over `outpost.toml`'s. Repeatable.
  #[arg(long = "var", value_name = "KEY=VALUE")]
  vars: Vec<String>,

  /// Do not reload when files change.
  #[arg(long)]
  no_watch: bool,

  /// Keep KV data in this folder (default: .outpost/state/ beside the
  /// worker).
  #[arg(long, value_name = "DIR", conflicts_with = "no_persist")]
  persist_to: Option<PathBuf>,

  /// Keep KV data in memory only, gone when the server stops.
  #[arg(long)]
  no_persist: bool,

  /// Refuse fetch() to this machine (localhost, 127.0.0.0/8, ::1), which
  /// `outpost dev` allows by default.
  #[arg(long)]
  no_local_fetch: bool,

  #[command(flatten)]
  serve: ServeArgs,
}

/// `--var`s, over the `[vars]` of `outpost.toml`.
fn parse_vars(vars: &[String], mut env: WorkerEnv) -> anyhow::Result<WorkerEnv> {
  for var in vars {
    let Some((key, value)) = var.split_once('=') else {
      bail!("--var {var:?} is not KEY=VALUE");
    };
    if key.is_empty() {
      bail!("--var {var:?} has an empty name");
    }
    env.vars.insert(key.to_owned(), value.to_owned());
  }
  Ok(env)
}

/// The entry the config here names, or ./worker.js or ./worker.ts, or
/// for a project of assets alone the worker behind them.
fn entry_from_project(env: Option<&str>) -> anyhow::Result<PathBuf> {
  let found = dev_workers::find_entry(Path::new(""), env)?;
  found.context(
    "no entry given, no `main` in ./outpost.toml or ./wrangler.toml, and no worker.js or \
       worker.ts here: pass the worker's entry module",
  )
}

/// Whether `dir` holds outpost.toml or a wrangler config.
fn has_config(dir: &Path) -> bool {
  std::iter::once(outpost_edge::config::CONFIG_FILE)
    .chain(outpost_edge::config::WRANGLER_FILES)
    .any(|name| dir.join(name).is_file())
}

/// The project's `[assets]`, read from its folder (files added later
/// need a restart).
fn dev_assets(
  folder: &Path,
  entry: &Path,
  env: Option<&str>,
) -> anyhow::Result<Option<Arc<AssetSite>>> {
  let Some(config) = outpost_edge::config::read_project(folder, env)?.and_then(|p| p.assets) else {
    return Ok(None);
  };
  let assets_only = entry.ends_with("assets-only-worker.js");
  let Some((site, files)) =
    assets::folder_site(folder, &config, assets_only, AssetCache::default())?
  else {
    eprintln!("warning: [assets] has no `directory`; no static assets are served");
    return Ok(None);
  };
  if let Some(directory) = &config.directory {
    eprintln!(
      "outpost dev: {files} static asset(s) from {}",
      folder.join(directory).display()
    );
  }
  Ok(Some(site))
}

/// Runs `outpost dev` until Ctrl-C or SIGTERM.
pub fn run(mut args: DevArgs) -> anyhow::Result<()> {
  // The settings come from the outpost.toml beside the entry, or from
  // ./outpost.toml when that is what named the entry.
  let (entry, folder) = match args.entry.take() {
    // A project folder, as `outpost dev a/ b/` names them.
    Some(dir) if dir.is_dir() => (dev_workers::entry_in(&dir, args.env.as_deref())?, dir),
    Some(entry) => {
      // The config beside the entry, else the one here (`outpost dev
      // src/index.ts` in a wrangler project).
      let beside = entry.parent().unwrap_or(Path::new(".")).to_owned();
      let folder = match has_config(&beside) || !has_config(Path::new(".")) {
        true => beside,
        false => PathBuf::from("."),
      };
      (entry, folder)
    }
    None => (entry_from_project(args.env.as_deref())?, PathBuf::from(".")),
  };
  if !entry.is_file() {
    bail!("{} is not a file", entry.display());
  }
  let mut node_outbound = args.serve.outbound_policy()?;
  if !args.no_local_fetch {
    node_outbound = node_outbound.merged(&OutboundPolicy::localhost());
  }
  // Vars, limits and `[outbound] allow`, as `outpost edge --local` reads them.
  let settings = read_worker_settings(&folder, args.env.as_deref(), &node_outbound)?;
  // Secrets for local development, as wrangler reads them.
  let dev_vars = read_dev_vars(&folder, args.env.as_deref())?;
  if let Some(file) = dev_vars_file(&folder, args.env.as_deref()) {
    eprintln!(
      "outpost dev: {} var(s) from {}",
      dev_vars.len(),
      file.display()
    );
  }
  // --no-persist: a store in a folder removed when `scratch` drops.
  let scratch = match args.no_persist {
    true => Some(tempfile::tempdir().context("making a scratch folder for KV")?),
    false => None,
  };
  let state = match &scratch {
    Some(dir) => dir.path().to_owned(),
    None => local_state_dir(args.persist_to.as_deref(), &folder),
  };
  let kv: Arc<dyn KvBackend> = Arc::new(StoreKv::local(open_local_store(&state)?));
  let others = std::mem::take(&mut args.others);
  let kv_note = (!settings.kv_namespaces.is_empty()).then(|| match &scratch {
    Some(_) => "outpost dev: KV data in memory only (--no-persist)".to_owned(),
    None => format!("outpost dev: KV data in {}", state.display()),
  });
  let assets = dev_assets(&folder, &entry, args.env.as_deref())?;
  let env = parse_vars(
    &args.vars,
    WorkerEnv {
      vars: settings.vars.into_iter().chain(dev_vars).collect(),
      kv: kv_env(&settings.kv_namespaces, &kv),
      nodejs_compat: settings.nodejs_compat,
      assets: assets.as_ref().and_then(assets::env_binding),
      services: None,
    },
  )?;
  let runtime = args.serve.prepare()?;
  runtime.block_on(async move {
    let dispatcher = args.serve.start_dispatcher()?;
    let name = settings.name.clone().unwrap_or_else(|| {
      entry
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("worker")
        .to_owned()
    });
    let routes = Routes::new(RouteTable::catch_all(name.clone()));
    let mut env = env;
    env.services = ServiceRouter::bindings(
      &settings.services,
      &settings.dispatch_namespaces,
      &routes,
      &dispatcher,
    );
    let shared = dev_workers::Shared {
      env: args.env.as_deref(),
      outbound: &node_outbound,
      kv: &kv,
      routes: &routes,
      dispatcher: &dispatcher,
    };
    let mut user_workers = Vec::new();
    for spec in &args.user_workers {
      let Some((namespace, path)) = spec.split_once('=') else {
        bail!("--user-worker {spec:?} is not NAMESPACE=FOLDER");
      };
      if !outpost_protocol::is_worker_name(namespace) {
        bail!("--user-worker {spec:?}: a namespace is lowercase letters, digits and -");
      }
      user_workers.push((Some(namespace), Path::new(path)));
    }
    let mut companions = Vec::new();
    let starts = others
      .iter()
      .map(|path| (None, path.as_path()))
      .chain(user_workers);
    for (namespace, path) in starts {
      let companion = dev_workers::start(path, namespace, &shared).await?;
      let taken = |c: &dev_workers::Companion| c.name == companion.name;
      if companion.name == name || companions.iter().any(taken) {
        bail!(
          "two workers are named {:?}: give one another `name`",
          companion.name
        );
      }
      eprintln!(
        "outpost dev: also serving {} as {:?}",
        companion.worker.entry.display(),
        companion.name
      );
      companions.push(companion);
    }
    let running: Vec<&str> = std::iter::once(name.as_str())
      .chain(companions.iter().map(|c| c.name.as_str()))
      .collect();
    let bindings = settings
      .services
      .iter()
      .chain(companions.iter().flat_map(|c| &c.bound));
    for service in bindings.filter(|s| !running.contains(&s.service.as_str())) {
      eprintln!(
        "outpost dev: {} is bound to worker {:?}, which this dev server does not run; its calls will fail (add its folder: `outpost dev . ../{}`)",
        service.binding, service.service, service.service
      );
    }
    for dispatch in &settings.dispatch_namespaces {
      let prefix = outpost_protocol::namespaced_worker(&dispatch.namespace, "");
      if !running.iter().any(|name| name.starts_with(&prefix)) {
        eprintln!(
          "outpost dev: {} reaches dispatch namespace {:?}, which has no user workers here; every get() will find none (add some: `--user-worker {}=../folder`)",
          dispatch.binding, dispatch.namespace, dispatch.namespace
        );
      }
    }
    let loaded = dev_workers::Loaded {
      name: &name,
      entry: &entry,
      folder: &folder,
      limits: settings.limits,
      nodejs_compat: settings.nodejs_compat,
    };
    let (worker, dirs) = loaded.start(env, &dispatcher).await?;

    let listener = args.serve.bind(args.port).await?;
    let addr = listener.local_addr()?;
    // On stderr: stdout's first line is the ready line scripts wait for.
    if let Some(note) = &kv_note {
      eprintln!("{note}");
    }
    println!("outpost dev: serving {} at http://{addr}/", entry.display());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let names: Vec<String> = companions.iter().map(|c| c.name.clone()).collect();
    let companion_sites: Vec<(String, Arc<AssetSite>)> = companions
      .iter()
      .filter_map(|c| Some((c.name.clone(), c.site.clone()?)))
      .collect();
    let mut watched = vec![(worker, dirs)];
    watched.extend(companions.into_iter().map(|c| (c.worker, c.dirs)));
    let watches: Vec<_> = watched
      .into_iter()
      .filter(|_| !args.no_watch)
      .map(|(worker, dirs)| {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
          let stopped = async move {
            let _ = stop.changed().await;
          };
          if let Err(err) = worker.watch(dirs, stopped).await {
            tracing::error!(worker = worker.name, "hot reload stopped: {err}");
          }
        })
      })
      .collect();
    // Cron triggers fire on their own schedule, as `wrangler dev
    // --test-scheduled` lets them be run by hand at /__scheduled.
    let crons = (!settings.crons.is_empty()).then(|| {
      let patterns: Vec<&str> = settings.crons.iter().map(|c| c.pattern()).collect();
      eprintln!(
        "outpost dev: cron triggers {} fire on schedule (UTC); /__scheduled?cron=... runs one now",
        patterns.join(", ")
      );
      let mut stop = stop_rx.clone();
      tokio::spawn(fire_on_schedule(
        dispatcher.executor_for(&name).clone(),
        name.clone(),
        settings.crons.clone(),
        now_ms(),
        |cron, due, outcome| {
          let result = if outcome.ok { "ok" } else { "failed" };
          eprintln!(
            "outpost dev: cron {cron:?} due at {due} ms: {result} in {} ms",
            outcome.duration.as_millis()
          );
        },
        async move {
          let _ = stop.changed().await;
        },
      ))
    });
    let mut table = RouteTable::catch_all(name.clone()).with_names(names);
    if let Some(site) = assets {
      table = table.with_assets(name, site);
    }
    for (companion, site) in companion_sites {
      table = table.with_assets(companion, site);
    }
    routes.replace(table);
    let mut config = args.serve.server_config();
    config.scheduled_endpoints = true;
    outpost_edge::run(listener, routes, dispatcher, config, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    for watch in watches {
      let _ = watch.await;
    }
    if let Some(crons) = crons {
      let _ = crons.await;
    }
    Ok(())
  })
}
