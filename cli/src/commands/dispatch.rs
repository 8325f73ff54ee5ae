//! `outpost dispatch-namespace`: the namespaces that hold a platform's user
//! workers, reached only through a dispatcher worker's
//! `[[dispatch_namespaces]]` binding. `outpost deploy --dispatch-namespace`
//! uploads into one.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::api::{Api, ApiArgs};
use super::deploy::{runtime, wait_for_edges};

/// Arguments of `outpost dispatch-namespace`.
#[derive(Args)]
pub struct DispatchArgs {
  #[command(subcommand)]
  command: DispatchCommand,
  /// How long `delete` waits for every edge to stop serving its workers.
  #[arg(long, default_value = "30", value_name = "SECONDS", global = true)]
  timeout: u64,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum DispatchCommand {
  /// Create a namespace.
  Create {
    /// Its name: lowercase letters, digits and -.
    name: String,
  },
  /// List the namespaces and how many user workers each serves.
  List,
  /// List a namespace's user workers.
  Show {
    /// The namespace.
    name: String,
  },
  /// Delete a namespace: its user workers stop serving everywhere (their
  /// versions are kept).
  Delete {
    /// The namespace.
    name: String,
  },
}

/// The API path of worker `name`: under its dispatch namespace if it has
/// one.
pub(super) fn worker_path(namespace: Option<&str>, name: &str) -> String {
  match namespace {
    Some(namespace) => format!("/dispatch-namespaces/{namespace}/workers/{name}"),
    None => format!("/workers/{name}"),
  }
}

/// Runs `outpost dispatch-namespace`.
pub fn run(args: DispatchArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  runtime()?.block_on(async {
    match args.command {
      DispatchCommand::Create { name } => {
        api
          .send(Method::POST, "/dispatch-namespaces", &json!({ "name": name }))
          .await?;
        println!(
          "dispatch namespace {name} created; upload to it with `outpost deploy --dispatch-namespace {name}`"
        );
      }
      DispatchCommand::List => {
        let answer = api.call(Method::GET, "/dispatch-namespaces", None).await?;
        println!("{:<32} {:>8}", "namespace", "workers");
        for namespace in answer["namespaces"].as_array().into_iter().flatten() {
          println!(
            "{:<32} {:>8}",
            namespace["name"].as_str().unwrap_or(""),
            namespace["workers"].as_u64().unwrap_or(0)
          );
        }
      }
      DispatchCommand::Show { name } => {
        let answer = api
          .call(Method::GET, &format!("/dispatch-namespaces/{name}"), None)
          .await?;
        println!("{:<40} {:>8}  deployed", "worker", "newest");
        for worker in answer["workers"].as_array().into_iter().flatten() {
          println!(
            "{:<40} {:>8}  {}",
            worker["name"].as_str().unwrap_or(""),
            format!("v{}", worker["newest_version"].as_u64().unwrap_or(0)),
            if worker["deployed"] == json!(true) {
              "yes"
            } else {
              "no"
            }
          );
        }
      }
      DispatchCommand::Delete { name } => {
        let answer = api
          .call(Method::DELETE, &format!("/dispatch-namespaces/{name}"), None)
          .await?;
        println!("dispatch namespace {name} deleted; its user workers' versions are kept");
        let epoch = answer["epoch"]
          .as_u64()
          .unwrap_or_default();
        wait_for_edges(
          &api,
          epoch,
          &format!("the removal of {name}"),
          std::time::Duration::from_secs(args.timeout),
        )
        .await?;
      }
    }
    Ok(())
  })
}
