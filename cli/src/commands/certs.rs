//! `outpost certs`: TLS certificates the control plane pushes to every
//! edge, served by SNI beside the edges' own `--tls-cert` files.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::api::{Api, ApiArgs};

/// Arguments of `outpost certs`.
#[derive(Args)]
pub struct CertsArgs {
  #[command(subcommand)]
  command: CertsCommand,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum CertsCommand {
  /// Add (or replace) the certificate for a host; its private key is
  /// sealed at rest in the control plane.
  Add {
    /// The host it serves (api.example.com, or *.example.com).
    #[arg(long)]
    host: String,
    /// The certificate chain, PEM, leaf first.
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// Its private key, PEM.
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
  },
  /// List the hosts with certificates, their names and expiry.
  List,
  /// Remove a host's certificate from every edge.
  Remove {
    /// The host.
    host: String,
  },
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
  std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs `outpost certs`.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .context("starting Tokio")?;
  runtime.block_on(async {
    match args.command {
      CertsCommand::Add { host, cert, key } => {
        let body = json!({ "host": host, "cert": read(&cert)?, "key": read(&key)? });
        let answer = api.send(Method::PUT, "/certificates", &body).await?;
        println!(
          "certificate for {} added (names {}); edges pick it up at epoch {}",
          answer["host"].as_str().unwrap_or(&host),
          answer["names"],
          answer["epoch"]
        );
      }
      CertsCommand::List => {
        let answer = api.call(Method::GET, "/certificates", None).await?;
        for cert in answer["certificates"].as_array().into_iter().flatten() {
          println!(
            "{}\tnames {}\texpires {}",
            cert["host"].as_str().unwrap_or(""),
            cert["names"],
            cert["not_after"]
          );
        }
      }
      CertsCommand::Remove { host } => {
        api
          .call(Method::DELETE, &format!("/certificates/{host}"), None)
          .await?;
        println!("certificate for {host} removed");
      }
    }
    Ok(())
  })
}
