//! `outpost kv`: KV namespaces and keys, on the control plane or (with
//! `--local`) in the store `outpost dev` keeps beside the worker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use outpost_control::kv::{BulkPair, bulk_writes, ensure_namespaces};
use outpost_control::store::{KvWrite, SqliteStore, Store};
use outpost_edge::config::read_project;
use outpost_edge::local::state_dir;
use outpost_protocol::kv::{self, Clock, KvListOptions, MAX_LIST_LIMIT};
use reqwest::Method;
use serde_json::json;

use super::api::{Api, ApiArgs};

/// The file the local KV store lives in, under the state folder.
const LOCAL_KV_FILE: &str = "kv.sqlite3";

/// Where `outpost dev` keeps a worker's state: `--persist-to`, or
/// `.outpost/state/` in the worker's folder.
pub fn local_state_dir(persist_to: Option<&Path>, worker_dir: &Path) -> PathBuf {
  persist_to.map_or_else(|| state_dir(worker_dir).join("state"), Path::to_owned)
}

/// Opens (creating) the local KV store in `dir`.
pub fn open_local_store(dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
  std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
  let path = dir.join(LOCAL_KV_FILE);
  let store =
    SqliteStore::open(&path).with_context(|| format!("opening the KV store {}", path.display()))?;
  Ok(Arc::new(store))
}

/// Arguments of `outpost kv`.
#[derive(Args)]
pub struct KvArgs {
  #[command(subcommand)]
  command: KvCommand,
}

#[derive(Subcommand)]
enum KvCommand {
  /// Create, list and delete namespaces on the control plane.
  Namespace {
    #[command(subcommand)]
    command: NamespaceCommand,
    #[command(flatten)]
    api: ApiArgs,
  },
  /// Put, get, list and delete keys.
  Key {
    #[command(subcommand)]
    command: KeyCommand,
    #[command(flatten)]
    target: Target,
  },
  /// Write or delete many keys at once, from a JSON file.
  Bulk {
    #[command(subcommand)]
    command: BulkCommand,
    #[command(flatten)]
    target: Target,
  },
}

#[derive(Subcommand)]
enum NamespaceCommand {
  /// Create a namespace; its id is the last line printed.
  Create {
    /// A unique title.
    title: String,
  },
  /// List the namespaces.
  List,
  /// Delete a namespace and every key in it.
  Delete {
    /// The namespace's id.
    id: String,
  },
}

#[derive(Subcommand)]
enum KeyCommand {
  /// Write a key.
  Put {
    /// The key.
    key: String,
    /// The value (or give --path).
    #[arg(required_unless_present = "path", conflicts_with = "path")]
    value: Option<String>,
    /// Read the value from this file.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Expire after this many seconds (at least 60).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u64>,
    /// Expire at this time, in seconds since the Unix epoch.
    #[arg(long, value_name = "SECONDS")]
    expiration: Option<u64>,
    /// Metadata, as JSON.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
  },
  /// Write a key's value, raw, to stdout.
  Get {
    /// The key.
    key: String,
  },
  /// List keys, one per line.
  List {
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    prefix: String,
  },
  /// Delete a key.
  Delete {
    /// The key.
    key: String,
  },
}

#[derive(Subcommand)]
enum BulkCommand {
  /// Write the pairs in a JSON file: [{"key", "value", "base64",
  /// "expiration", "expiration_ttl", "metadata"}, ...], all or none.
  Put {
    /// The file.
    file: PathBuf,
  },
  /// Delete the keys in a JSON file: ["key", ...].
  Delete {
    /// The file.
    file: PathBuf,
  },
}

/// Which namespace, and where.
#[derive(Args)]
struct Target {
  /// The namespace's id.
  #[arg(long, global = true, conflicts_with = "binding")]
  namespace_id: Option<String>,
  /// The binding in ./outpost.toml's [[kv_namespaces]] whose namespace to use.
  #[arg(long, global = true)]
  binding: Option<String>,
  /// The config environment whose bindings --binding reads (`[env.<name>]`).
  #[arg(long, short = 'e', value_name = "ENV", global = true)]
  env: Option<String>,
  /// Use the local store `outpost dev` keeps (.outpost/state/ here), not
  /// the control plane.
  #[arg(long, global = true)]
  local: bool,
  /// With --local: the state folder `outpost dev --persist-to` was given.
  #[arg(long, global = true, requires = "local", value_name = "DIR")]
  persist_to: Option<PathBuf>,
  #[command(flatten)]
  api: ApiArgs,
}

impl Target {
  fn namespace(&self) -> anyhow::Result<String> {
    if let Some(id) = &self.namespace_id {
      return Ok(id.clone());
    }
    let Some(binding) = &self.binding else {
      bail!("which namespace? pass --namespace-id <ID> or --binding <NAME>");
    };
    let config = read_project(Path::new("."), self.env.as_deref())?
      .context("--binding needs an outpost.toml or wrangler config here with [[kv_namespaces]]")?;
    // The local store is the one `outpost dev` uses: preview ids first.
    let bindings = match self.local {
      true => config.kv_for_local(),
      false => config.kv_for_deploy().map_err(anyhow::Error::msg)?,
    };
    bindings
      .into_iter()
      .find(|kv| &kv.binding == binding)
      .map(|kv| kv.id)
      .with_context(|| format!("the project here binds no KV namespace as {binding:?}"))
  }
}

/// A local store or the control plane.
enum Place {
  Local(Arc<dyn Store>),
  Remote(Api),
}

fn place(target: &Target) -> anyhow::Result<Place> {
  if target.local {
    let dir = local_state_dir(target.persist_to.as_deref(), Path::new("."));
    Ok(Place::Local(open_local_store(&dir)?))
  } else {
    Ok(Place::Remote(Api::new(&target.api)?))
  }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
  tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .context("starting Tokio")
}

/// `/kv/namespaces/{id}/values/{key}`, the key percent-encoded.
fn value_path(namespace: &str, key: &str) -> String {
  let key = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
  format!("/kv/namespaces/{namespace}/values/{key}")
}

/// Runs `outpost kv`.
pub fn run(args: KvArgs) -> anyhow::Result<()> {
  runtime()?.block_on(async move {
    match args.command {
      KvCommand::Namespace { command, api } => namespace(command, &Api::new(&api)?).await,
      KvCommand::Key { command, target } => {
        let namespace = target.namespace()?;
        key(command, &place(&target)?, &namespace).await
      }
      KvCommand::Bulk { command, target } => {
        let namespace = target.namespace()?;
        bulk(command, &place(&target)?, &namespace).await
      }
    }
  })
}

async fn namespace(command: NamespaceCommand, api: &Api) -> anyhow::Result<()> {
  match command {
    NamespaceCommand::Create { title } => {
      let answer = api
        .send(Method::POST, "/kv/namespaces", &json!({ "title": title }))
        .await?;
      let id = answer["namespace"]["id"].as_str().unwrap_or_default();
      eprintln!("created KV namespace {title:?}; bind it in outpost.toml:");
      eprintln!("  [[kv_namespaces]]\n  binding = \"...\"\n  id = \"{id}\"");
      println!("{id}");
    }
    NamespaceCommand::List => {
      let answer = api.call(Method::GET, "/kv/namespaces", None).await?;
      for ns in answer["namespaces"].as_array().into_iter().flatten() {
        println!(
          "{}\t{}",
          ns["id"].as_str().unwrap_or(""),
          ns["title"].as_str().unwrap_or("")
        );
      }
    }
    NamespaceCommand::Delete { id } => {
      api
        .call(Method::DELETE, &format!("/kv/namespaces/{id}"), None)
        .await?;
      println!("KV namespace {id} deleted");
    }
  }
  Ok(())
}

async fn key(command: KeyCommand, place: &Place, namespace: &str) -> anyhow::Result<()> {
  match command {
    KeyCommand::Put {
      key,
      value,
      path,
      ttl,
      expiration,
      metadata,
    } => {
      let value = match (value, path) {
        (Some(value), _) => value.into_bytes(),
        (None, Some(path)) => {
          std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the value, or --path <FILE>"),
      };
      match place {
        Place::Local(store) => {
          let entry = kv::prepare_put(
            &key,
            value,
            metadata,
            expiration,
            ttl,
            Clock::system().now(),
          )?;
          write_local(
            store,
            namespace,
            vec![KvWrite::Put {
              key: key.clone(),
              entry,
            }],
          )
          .await?;
        }
        Place::Remote(api) => {
          let mut query = Vec::new();
          if let Some(ttl) = ttl {
            query.push(format!("expiration_ttl={ttl}"));
          }
          if let Some(at) = expiration {
            query.push(format!("expiration={at}"));
          }
          let mut path = value_path(namespace, &key);
          if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
          }
          let headers: Vec<_> = metadata
            .into_iter()
            .map(|m| ("outpost-kv-metadata", m))
            .collect();
          api.raw(Method::PUT, &path, Some(value), &headers).await?;
        }
      }
      eprintln!("wrote {key:?}");
    }
    KeyCommand::Get { key } => {
      let value = match place {
        Place::Local(store) => {
          let found = match store
            .kv_get(namespace.to_owned(), key.clone(), Clock::system().now())
            .await
          {
            Err(outpost_control::store::StoreError::NotFound(_)) => None,
            result => result?,
          };
          found.with_context(|| format!("no key {key:?}"))?.value
        }
        Place::Remote(api) => {
          let (_, bytes) = api
            .raw(Method::GET, &value_path(namespace, &key), None, &[])
            .await?;
          bytes
        }
      };
      std::io::stdout().write_all(&value)?;
    }
    KeyCommand::List { prefix } => {
      let mut cursor = None;
      loop {
        let options = KvListOptions {
          prefix: prefix.clone(),
          limit: MAX_LIST_LIMIT,
          cursor: cursor.take(),
        };
        let page = match place {
          Place::Local(store) => {
            match store
              .kv_list(namespace.to_owned(), options, Clock::system().now())
              .await
            {
              Ok(page) => page,
              Err(outpost_control::store::StoreError::NotFound(_)) => Default::default(),
              Err(err) => return Err(err.into()),
            }
          }
          Place::Remote(api) => {
            let encode = |s: &str| {
              percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
            };
            let mut path = format!(
              "/kv/namespaces/{namespace}/keys?prefix={}",
              encode(&options.prefix)
            );
            if let Some(cursor) = &options.cursor {
              path.push_str(&format!("&cursor={}", encode(cursor)));
            }
            serde_json::from_value(api.call(Method::GET, &path, None).await?)?
          }
        };
        for key in &page.keys {
          println!("{}", key.name);
        }
        match page.cursor {
          Some(next) if !page.list_complete => cursor = Some(next),
          _ => break,
        }
      }
    }
    KeyCommand::Delete { key } => {
      match place {
        Place::Local(store) => {
          kv::check_key(&key)?;
          write_local(store, namespace, vec![KvWrite::Delete { key: key.clone() }]).await?;
        }
        Place::Remote(api) => {
          api
            .raw(Method::DELETE, &value_path(namespace, &key), None, &[])
            .await?;
        }
      }
      eprintln!("deleted {key:?}");
    }
  }
  Ok(())
}

async fn write_local(
  store: &Arc<dyn Store>,
  namespace: &str,
  writes: Vec<KvWrite>,
) -> anyhow::Result<()> {
  ensure_namespaces(&**store, &[namespace.to_owned()]).await?;
  store.kv_write(namespace.to_owned(), writes).await?;
  Ok(())
}

async fn bulk(command: BulkCommand, place: &Place, namespace: &str) -> anyhow::Result<()> {
  let read = |file: &Path| -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
  };
  match command {
    BulkCommand::Put { file } => {
      let bytes = read(&file)?;
      let pairs: Vec<BulkPair> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a JSON array of pairs", file.display()))?;
      let count = pairs.len();
      match place {
        Place::Local(store) => {
          let writes = bulk_writes(pairs, Clock::system().now())?;
          write_local(store, namespace, writes).await?;
        }
        Place::Remote(api) => {
          let path = format!("/kv/namespaces/{namespace}/bulk");
          api.call(Method::PUT, &path, Some(bytes)).await?;
        }
      }
      eprintln!("wrote {count} keys");
    }
    BulkCommand::Delete { file } => {
      let bytes = read(&file)?;
      let keys: Vec<String> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a JSON array of keys", file.display()))?;
      let count = keys.len();
      match place {
        Place::Local(store) => {
          let mut writes = Vec::with_capacity(keys.len());
          for key in keys {
            kv::check_key(&key)?;
            writes.push(KvWrite::Delete { key });
          }
          write_local(store, namespace, writes).await?;
        }
        Place::Remote(api) => {
          let path = format!("/kv/namespaces/{namespace}/bulk/delete");
          api.call(Method::POST, &path, Some(bytes)).await?;
        }
      }
      eprintln!("deleted {count} keys");
    }
  }
  Ok(())
}
