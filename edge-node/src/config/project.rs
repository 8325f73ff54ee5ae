//! A project folder's configuration: `outpost.toml` and wrangler's
//! `wrangler.toml`, `wrangler.jsonc` or `wrangler.json`, merged into one
//! [`Project`].
//!
//! Both formats are read as one JSON-shaped tree, so a key means the same in
//! either. `outpost.toml` wins key by key where both files exist. An
//! `[env.<name>]` section is applied with wrangler's rules: inheritable keys
//! (entry, dates, flags, routes, triggers, limits, assets) come from the top
//! level unless the environment sets them; bindings (vars, KV) are not
//! inherited; the name becomes `<name>-<env>` unless the environment names
//! the worker itself. Keys Outpost does not implement are warned about once
//! and ignored, never refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use outpost_protocol::{DispatchNamespaceBinding, KvBinding, Limits, ServiceBinding};
use serde_json::{Map, Value};

use super::ConfigError;

/// Outpost's own config file.
pub const CONFIG_FILE: &str = "outpost.toml";

/// wrangler's config files, in the order wrangler prefers them.
pub const WRANGLER_FILES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// Keys that an `[env.<name>]` section inherits from the top level.
const INHERITED: [&str; 11] = [
  "main",
  "compatibility_date",
  "compatibility_flags",
  "routes",
  "route",
  "triggers",
  "limits",
  "assets",
  "allow_eval",
  "outbound",
  "workers_dev",
];

/// Keys with no effect on how a worker runs, which are not worth a warning.
const SILENT: [&str; 2] = ["$schema", "env"];

/// A KV binding as configured: deploy needs `id`, dev prefers `preview_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvConfig {
  /// The name in `env`.
  pub binding: String,
  /// The namespace's id on the control plane.
  pub id: Option<String>,
  /// The namespace `outpost dev` uses, if not `id`.
  pub preview_id: Option<String>,
}

/// `[assets]`: static files served beside the worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetsConfig {
  /// The folder, relative to the project.
  pub directory: Option<PathBuf>,
  /// How requests find the files: `binding`, `not_found_handling`,
  /// `html_handling` and `run_worker_first` (its files stay empty).
  pub serving: outpost_protocol::assets::AssetManifest,
}

/// What a project folder declares, from `outpost.toml` and wrangler's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Project {
  /// The worker's name (`-<env>` appended under an environment).
  pub name: Option<String>,
  /// The entry module, relative to the project folder.
  pub main: Option<PathBuf>,
  /// `compatibility_date`.
  pub compatibility_date: Option<String>,
  /// `compatibility_flags` (`nodejs_compat` turns on bare Node built-ins).
  pub compatibility_flags: Vec<String>,
  /// Route patterns for `outpost deploy` (`routes`, or `route`).
  pub routes: Vec<String>,
  /// Plain vars for `env`.
  pub vars: BTreeMap<String, String>,
  /// KV namespaces bound into `env`.
  pub kv_namespaces: Vec<KvConfig>,
  /// Service bindings (`[[services]]`).
  pub services: Vec<ServiceBinding>,
  /// Dispatch namespace bindings (`[[dispatch_namespaces]]`).
  pub dispatch_namespaces: Vec<DispatchNamespaceBinding>,
  /// `triggers.crons`.
  pub crons: Vec<String>,
  /// `[assets]`.
  pub assets: Option<AssetsConfig>,
  /// `[limits]`.
  pub limits: Limits,
  /// `allow_eval`.
  pub allow_eval: bool,
  /// `[outbound] allow`.
  pub outbound_allow: Vec<String>,
  /// The files this was read from.
  pub files: Vec<PathBuf>,
}

impl Project {
  /// Whether Node's built-ins are on (`nodejs_compat` or `nodejs_compat_v2`).
  pub fn nodejs_compat(&self) -> bool {
    self
      .compatibility_flags
      .iter()
      .any(|f| f == "nodejs_compat" || f == "nodejs_compat_v2")
  }

  /// The KV bindings `outpost deploy` uploads: each needs an `id`.
  pub fn kv_for_deploy(&self) -> Result<Vec<KvBinding>, String> {
    self
      .kv_namespaces
      .iter()
      .map(|kv| match &kv.id {
        Some(id) => Ok(KvBinding {
          binding: kv.binding.clone(),
          id: id.clone(),
        }),
        None => Err(format!(
          "KV binding {} has no `id`: create one with `outpost kv namespace create` and set it",
          kv.binding
        )),
      })
      .collect()
  }

  /// The KV bindings a local node uses: `preview_id`, else `id`, else a
  /// namespace named after the binding.
  pub fn kv_for_local(&self) -> Vec<KvBinding> {
    self
      .kv_namespaces
      .iter()
      .map(|kv| KvBinding {
        binding: kv.binding.clone(),
        id: kv
          .preview_id
          .clone()
          .or_else(|| kv.id.clone())
          .unwrap_or_else(|| kv.binding.clone()),
      })
      .collect()
  }
}

/// Reads the project in `dir` under environment `env`; `None` if the folder
/// has no config file at all.
pub fn read_project(dir: &Path, env: Option<&str>) -> Result<Option<Project>, ConfigError> {
  let wrangler = WRANGLER_FILES
    .iter()
    .map(|name| dir.join(name))
    .find(|path| path.is_file());
  let outpost = Some(dir.join(CONFIG_FILE)).filter(|path| path.is_file());
  if wrangler.is_none() && outpost.is_none() {
    if let Some(env) = env {
      return Err(ConfigError {
        path: dir.join(CONFIG_FILE),
        message: format!("--env {env} given, but the folder has no config file"),
      });
    }
    return Ok(None);
  }
  let mut merged = Map::new();
  let mut files = Vec::new();
  let mut env_found = env.is_none();
  for path in [wrangler, outpost].into_iter().flatten() {
    let tree = read_tree(&path)?;
    let (tree, found) = select_env(&path, tree, env)?;
    env_found |= found;
    merged.extend(tree);
    files.push(path);
  }
  let first = files[0].clone();
  if !env_found {
    return Err(ConfigError {
      path: first,
      message: format!("no [env.{}] section", env.unwrap_or_default()),
    });
  }
  let mut project = to_project(&files[files.len() - 1], merged)?;
  project.files = files;
  Ok(Some(project))
}

/// Parses one config file into a JSON-shaped object.
fn read_tree(path: &Path) -> Result<Map<String, Value>, ConfigError> {
  let fail = |message: String| ConfigError {
    path: path.to_owned(),
    message,
  };
  let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
  let value: Value = if path.extension().is_some_and(|e| e == "toml") {
    toml::from_str(&text).map_err(|e| fail(e.to_string()))?
  } else {
    jsonc_parser::parse_to_serde_value(&text, &Default::default())
      .map_err(|e| fail(e.to_string()))?
  };
  match value {
    Value::Object(map) => Ok(map),
    Value::Null => Ok(Map::new()),
    _ => Err(fail("the file is not a table of keys".into())),
  }
}

/// Applies `[env.<name>]` to a file's top level; says whether the file had
/// that section.
fn select_env(
  path: &Path,
  mut top: Map<String, Value>,
  env: Option<&str>,
) -> Result<(Map<String, Value>, bool), ConfigError> {
  let envs = top.remove("env");
  let Some(env) = env else {
    return Ok((top, false));
  };
  let section = match envs.as_ref().and_then(|envs| envs.get(env)) {
    None => return Ok((top, false)),
    Some(Value::Object(section)) => section.clone(),
    Some(_) => {
      return Err(ConfigError {
        path: path.to_owned(),
        message: format!("[env.{env}] is not a table"),
      });
    }
  };
  let mut selected = Map::new();
  for key in INHERITED {
    if let Some(value) = top.get(key) {
      selected.insert(key.to_owned(), value.clone());
    }
  }
  if section.contains_key("route") || section.contains_key("routes") {
    selected.remove("route");
    selected.remove("routes");
  }
  let name = match section.get("name") {
    Some(name) => Some(name.clone()),
    None => top
      .get("name")
      .and_then(Value::as_str)
      .map(|name| Value::String(format!("{name}-{env}"))),
  };
  selected.extend(section);
  if let Some(name) = name {
    selected.insert("name".into(), name);
  }
  Ok((selected, true))
}

/// Warns about `key` in `path` once per process: a node re-reads configs as
/// they change, and one line per key is enough.
pub(crate) fn warn_once(path: &Path, key: &str, why: &str) {
  static WARNED: OnceLock<Mutex<BTreeSet<(PathBuf, String)>>> = OnceLock::new();
  let warned = WARNED.get_or_init(Mutex::default);
  let mut warned = warned.lock().unwrap_or_else(|e| e.into_inner());
  if warned.insert((path.to_owned(), key.to_owned())) {
    tracing::warn!(target: "outpost::config", "{}: `{key}` {why}", path.display());
  }
}

/// Maps the merged tree onto a [`Project`]; `path` names the file in
/// messages.
fn to_project(path: &Path, tree: Map<String, Value>) -> Result<Project, ConfigError> {
  let fail = |key: &str, message: String| ConfigError {
    path: path.to_owned(),
    message: format!("`{key}`: {message}"),
  };
  let mut project = Project::default();
  for (key, value) in tree {
    match key.as_str() {
      "name" => project.name = Some(string(&value).map_err(|m| fail(&key, m))?),
      "main" => project.main = Some(string(&value).map_err(|m| fail(&key, m))?.into()),
      "compatibility_date" => {
        project.compatibility_date = Some(string(&value).map_err(|m| fail(&key, m))?);
      }
      "compatibility_flags" => {
        project.compatibility_flags = strings(&value).map_err(|m| fail(&key, m))?
      }
      "vars" => project.vars = vars(path, &value).map_err(|m| fail(&key, m))?,
      "kv_namespaces" => project.kv_namespaces = kv(path, &value).map_err(|m| fail(&key, m))?,
      "services" => project.services = services(path, &value).map_err(|m| fail(&key, m))?,
      "dispatch_namespaces" => {
        project.dispatch_namespaces =
          dispatch_namespaces(path, &value).map_err(|m| fail(&key, m))?;
      }
      "routes" | "route" => {
        let list = match value {
          Value::Array(items) => items,
          one => vec![one],
        };
        for item in list {
          project
            .routes
            .push(route(path, &item).map_err(|m| fail(&key, m))?);
        }
      }
      "triggers" => {
        let table = known_keys(path, "triggers", &value, &["crons"]).map_err(|m| fail(&key, m))?;
        if let Some(crons) = table.get("crons") {
          project.crons = strings(crons).map_err(|m| fail("triggers.crons", m))?;
          for cron in &project.crons {
            crate::scheduled::CronTrigger::parse(cron).map_err(|m| fail("triggers.crons", m))?;
          }
        }
      }
      "assets" => {
        let known = [
          "directory",
          "binding",
          "not_found_handling",
          "html_handling",
          "run_worker_first",
        ];
        let table = known_keys(path, "assets", &value, &known).map_err(|m| fail(&key, m))?;
        project.assets = Some(assets(&table).map_err(|m| fail(&key, m))?);
      }
      "limits" => {
        let known = [
          "cpu_ms",
          "memory_mb",
          "wall_ms",
          "max_inflight",
          "max_queued",
          "subrequests",
          "subrequest_timeout_ms",
        ];
        let table = known_keys(path, "limits", &value, &known).map_err(|m| fail(&key, m))?;
        project.limits =
          serde_json::from_value(Value::Object(table)).map_err(|e| fail(&key, e.to_string()))?;
      }
      "allow_eval" => {
        project.allow_eval = value
          .as_bool()
          .ok_or_else(|| fail(&key, "expected true or false".into()))?;
      }
      "outbound" => {
        let table = known_keys(path, "outbound", &value, &["allow"]).map_err(|m| fail(&key, m))?;
        if let Some(allow) = table.get("allow") {
          project.outbound_allow = strings(allow).map_err(|m| fail("outbound.allow", m))?;
        }
      }
      other if SILENT.contains(&other) => {}
      other => warn_once(path, other, "is not supported by Outpost; ignored"),
    }
  }
  Ok(project)
}

/// `[assets]`'s keys, checked.
fn assets(table: &Map<String, Value>) -> Result<AssetsConfig, String> {
  let text = |k: &str| table.get(k).map(string).transpose();
  let mut serving = outpost_protocol::assets::AssetManifest {
    binding: text("binding")?,
    ..Default::default()
  };
  if let Some(value) = table.get("not_found_handling") {
    serving.not_found_handling = serde_json::from_value(value.clone()).map_err(|_| {
      format!(
        "not_found_handling is \"single-page-application\", \"404-page\" or \"none\", not {value}"
      )
    })?;
  }
  if let Some(value) = table.get("html_handling") {
    serving.html_handling = serde_json::from_value(value.clone()).map_err(|_| {
      format!(
        "html_handling is \"auto-trailing-slash\", \"force-trailing-slash\", \"drop-trailing-slash\" or \"none\", not {value}"
      )
    })?;
  }
  serving.run_worker_first = match table.get("run_worker_first") {
    None | Some(Value::Bool(false)) => Vec::new(),
    Some(Value::Bool(true)) => vec!["/*".to_owned()],
    Some(value) => strings(value)
      .map_err(|_| format!("run_worker_first is true, false or a list of paths, not {value}"))?,
  };
  Ok(AssetsConfig {
    directory: text("directory")?.map(PathBuf::from),
    serving,
  })
}

fn string(value: &Value) -> Result<String, String> {
  value
    .as_str()
    .map(str::to_owned)
    .ok_or_else(|| format!("expected a string, found {value}"))
}

fn strings(value: &Value) -> Result<Vec<String>, String> {
  match value {
    Value::Array(items) => items.iter().map(string).collect(),
    other => Err(format!("expected a list of strings, found {other}")),
  }
}

/// A table's entries; keys not in `known` are warned about and dropped.
fn known_keys(
  path: &Path,
  table: &str,
  value: &Value,
  known: &[&str],
) -> Result<Map<String, Value>, String> {
  let Value::Object(map) = value else {
    return Err(format!("expected a table, found {value}"));
  };
  let mut kept = Map::new();
  for (key, value) in map {
    if known.contains(&key.as_str()) {
      kept.insert(key.clone(), value.clone());
    } else {
      warn_once(
        path,
        &format!("{table}.{key}"),
        "is not supported by Outpost; ignored",
      );
    }
  }
  Ok(kept)
}

/// `[vars]`: strings as they are; numbers and booleans as their text; other
/// JSON values as JSON text, with a warning (Workers would pass the value).
fn vars(path: &Path, value: &Value) -> Result<BTreeMap<String, String>, String> {
  let Value::Object(map) = value else {
    return Err(format!("expected a table, found {value}"));
  };
  let mut vars = BTreeMap::new();
  for (name, value) in map {
    let text = match value {
      Value::String(s) => s.clone(),
      Value::Number(n) => n.to_string(),
      Value::Bool(b) => b.to_string(),
      other => {
        warn_once(
          path,
          &format!("vars.{name}"),
          "is not a string; env receives it as JSON text",
        );
        other.to_string()
      }
    };
    vars.insert(name.clone(), text);
  }
  Ok(vars)
}

/// A list of tables (`[[key]]`), each read by `read` from its string
/// fields; fields not in `known` are warned about.
fn table_list<T>(
  path: &Path,
  key: &str,
  value: &Value,
  known: &[&str],
  read: impl Fn(&dyn Fn(&str) -> Result<Option<String>, String>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
  let Value::Array(items) = value else {
    return Err(format!("expected a list of tables, found {value}"));
  };
  items
    .iter()
    .map(|item| {
      let table = known_keys(path, key, item, known)?;
      read(&|k: &str| table.get(k).map(string).transpose())
    })
    .collect()
}

fn kv(path: &Path, value: &Value) -> Result<Vec<KvConfig>, String> {
  let known = ["binding", "id", "preview_id"];
  table_list(path, "kv_namespaces", value, &known, |get| {
    Ok(KvConfig {
      binding: get("binding")?.ok_or("each entry needs a `binding`")?,
      id: get("id")?,
      preview_id: get("preview_id")?,
    })
  })
}

/// `[[services]]`: each `{ binding, service, entrypoint }`; an
/// `environment` is warned about.
fn services(path: &Path, value: &Value) -> Result<Vec<ServiceBinding>, String> {
  let known = ["binding", "service", "entrypoint"];
  table_list(path, "services", value, &known, |get| {
    Ok(ServiceBinding {
      binding: get("binding")?.ok_or("each entry needs a `binding`")?,
      service: get("service")?.ok_or("each entry needs a `service`")?,
      entrypoint: get("entrypoint")?,
    })
  })
}

/// `[[dispatch_namespaces]]`: each `{ binding, namespace }`. Other keys
/// are warned about and ignored; among them `outbound`, since user
/// workers' `fetch()` goes out under their own outbound policy.
fn dispatch_namespaces(
  path: &Path,
  value: &Value,
) -> Result<Vec<DispatchNamespaceBinding>, String> {
  let known = ["binding", "namespace"];
  table_list(path, "dispatch_namespaces", value, &known, |get| {
    Ok(DispatchNamespaceBinding {
      binding: get("binding")?.ok_or("each entry needs a `binding`")?,
      namespace: get("namespace")?.ok_or("each entry needs a `namespace`")?,
    })
  })
}

/// A route as a pattern: a string, or `{ pattern, zone_name, custom_domain }`.
/// A custom domain serves the whole host.
fn route(path: &Path, value: &Value) -> Result<String, String> {
  match value {
    Value::String(pattern) => Ok(pattern.clone()),
    Value::Object(_) => {
      let table = known_keys(
        path,
        "routes",
        value,
        &["pattern", "zone_name", "zone_id", "custom_domain"],
      )?;
      let pattern = table
        .get("pattern")
        .map(string)
        .transpose()?
        .ok_or("a route table needs a `pattern`")?;
      let custom = table.get("custom_domain").and_then(Value::as_bool) == Some(true);
      Ok(if custom && !pattern.contains('/') {
        format!("{pattern}/*")
      } else {
        pattern
      })
    }
    other => Err(format!("expected a pattern or a table, found {other}")),
  }
}
