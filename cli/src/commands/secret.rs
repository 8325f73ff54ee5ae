//! `outpost secret`: a deployed worker's secrets, which reach `env` beside
//! its vars. A value is read from standard input or typed at a prompt that
//! does not echo it; it never appears on the command line or in output.
//! Each change makes a new version and deploys it (see
//! control-plane/src/api/secrets.rs). `outpost dev` reads `.dev.vars`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use outpost_edge::config::{parse_dotenv, read_project};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use super::api::{Api, ApiArgs};

/// Arguments of `outpost secret`.
#[derive(Args)]
#[command(after_help = "Examples:
  echo -n \"$STRIPE_KEY\" | outpost secret put STRIPE_KEY
  outpost secret put DB_PASSWORD --env production     (prompts without echo)
  outpost secret list
  outpost secret bulk secrets.json                    ({\"NAME\": \"value\", ...} or NAME=value lines)
  outpost secret delete OLD_TOKEN")]
pub struct SecretArgs {
  #[command(subcommand)]
  command: SecretCommand,
  /// The worker (default: the project's name in ./wrangler.toml or ./outpost.toml).
  #[arg(long, global = true)]
  name: Option<String>,
  /// The config environment (`[env.<name>]`): the worker is `<name>-<env>`
  /// unless the environment names it.
  #[arg(long, short = 'e', value_name = "ENV", global = true)]
  env: Option<String>,
  /// The dispatch namespace the worker is a user worker of, if it is one.
  #[arg(long, value_name = "NAMESPACE", global = true)]
  dispatch_namespace: Option<String>,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum SecretCommand {
  /// Set a secret: its value from standard input, or a prompt on a terminal.
  Put {
    /// The secret's name, as in `env.NAME`.
    secret: String,
  },
  /// List the worker's secrets (names only).
  List,
  /// Remove a secret.
  Delete {
    /// The secret's name.
    secret: String,
  },
  /// Set several secrets at once from a file: a JSON object of names and
  /// values, or NAME=value lines as in .dev.vars.
  Bulk {
    /// The file.
    file: PathBuf,
  },
}

/// What a path segment escapes: all but the characters names are made of.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

/// The worker named by `--name`, or by the project here under `env`.
fn worker_name(flag: Option<String>, env: Option<&str>) -> anyhow::Result<String> {
  if let Some(name) = flag {
    return Ok(name);
  }
  read_project(Path::new("."), env)?
    .and_then(|project| project.name)
    .context("which worker? pass --name, or run in a project folder whose config has `name = ...`")
}

/// A value typed at the terminal with echo off, or all of standard input
/// (less one trailing newline).
fn read_value(secret: &str) -> anyhow::Result<String> {
  let stdin = std::io::stdin();
  if !stdin.is_terminal() {
    let mut value = String::new();
    stdin
      .lock()
      .read_to_string(&mut value)
      .context("reading the value from standard input")?;
    if value.ends_with('\n') {
      value.pop();
      if value.ends_with('\r') {
        value.pop();
      }
    }
    return Ok(value);
  }
  let value =
    rpassword::prompt_password(format!("value of {secret}: ")).context("reading the value")?;
  Ok(value)
}

/// The secrets in `file`: a JSON object, or dotenv lines.
fn read_bulk(file: &Path) -> anyhow::Result<BTreeMap<String, String>> {
  let text =
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
  if text.trim_start().starts_with('{') {
    let values: BTreeMap<String, Value> = serde_json::from_str(&text)
      .with_context(|| format!("{} is not a JSON object", file.display()))?;
    return values
      .into_iter()
      .map(|(name, value)| match value {
        Value::String(text) => Ok((name, text)),
        other => bail!("{}: {name} must be a string, not {other}", file.display()),
      })
      .collect();
  }
  parse_dotenv(&text).map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))
}

fn changed(answer: &Value) -> String {
  let version = answer["version"]["number"].as_u64().unwrap_or_default();
  let deployed = if answer["deployment"].is_object() {
    " and deployed"
  } else {
    " (not deployed: nothing served the worker)"
  };
  format!("v{version} made{deployed}")
}

/// Runs `outpost secret`.
pub fn run(args: SecretArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let worker = worker_name(args.name, args.env.as_deref())?;
  let worker = utf8_percent_encode(&worker, SEGMENT).to_string();
  let base = format!(
    "{}/secrets",
    super::dispatch::worker_path(args.dispatch_namespace.as_deref(), &worker)
  );
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .context("starting Tokio")?;
  runtime.block_on(async {
    match args.command {
      SecretCommand::Put { secret } => {
        let value = read_value(&secret)?;
        let path = format!("{base}/{}", utf8_percent_encode(&secret, SEGMENT));
        let answer = api
          .send(Method::PUT, &path, &json!({ "value": value }))
          .await?;
        println!("secret {secret} set on {worker}: {}", changed(&answer));
      }
      SecretCommand::List => {
        let answer = api.call(Method::GET, &base, None).await?;
        let names = answer["secrets"].as_array().cloned().unwrap_or_default();
        if names.is_empty() {
          eprintln!("{worker} has no secrets");
        }
        for name in names {
          println!("{}", name.as_str().unwrap_or_default());
        }
      }
      SecretCommand::Delete { secret } => {
        let path = format!("{base}/{}", utf8_percent_encode(&secret, SEGMENT));
        let answer = api.call(Method::DELETE, &path, None).await?;
        println!(
          "secret {secret} removed from {worker}: {}",
          changed(&answer)
        );
      }
      SecretCommand::Bulk { file } => {
        let secrets = read_bulk(&file)?;
        if secrets.is_empty() {
          bail!("{} holds no secrets", file.display());
        }
        let count = secrets.len();
        let answer = api
          .send(Method::POST, &base, &json!({ "secrets": secrets }))
          .await?;
        println!("{count} secret(s) set on {worker}: {}", changed(&answer));
      }
    }
    Ok(())
  })
}
