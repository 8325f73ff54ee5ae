//! `outpost versions`: a worker's versions and what share of requests each
//! serves, and `versions deploy` for a gradual rollout (a split of two
//! versions) or a jump to any version.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::api::{Api, ApiArgs};
use super::deploy::{describe_shares, runtime, wait_for_edges, worker_name};

/// Arguments of `outpost versions`.
#[derive(Args)]
#[command(after_help = "Examples:
  outpost versions                     (the same as `versions list`)
  outpost versions deploy v8@10% v7@90%
  outpost versions deploy v8            (all requests to v8)")]
pub struct VersionsArgs {
  #[command(subcommand)]
  command: Option<VersionsCommand>,
  /// The worker (default: `name` in ./outpost.toml).
  #[arg(long, global = true)]
  name: Option<String>,
  /// How long `deploy` waits for every edge.
  #[arg(long, default_value = "30", value_name = "SECONDS", global = true)]
  timeout: u64,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum VersionsCommand {
  /// List the versions, with the share of requests each serves now.
  List,
  /// Serve one version, or split requests between two: `v8@10% v7@90%`
  /// (shares sum to 100; a lone version takes all).
  Deploy {
    /// `v<number>@<percent>%`, or `v<number>` alone.
    #[arg(required = true, num_args = 1..=2)]
    versions: Vec<String>,
  },
}

/// `v8@10%` (also `8@10`, `v8@10` or a lone `v8`) as (version, percent).
fn parse_share(text: &str, alone: bool) -> anyhow::Result<(u64, u64)> {
  let bad = || {
    anyhow::anyhow!("{text:?} is not a version share: write v8@10% (or v8 alone for all requests)")
  };
  let (version, percent) = match text.split_once('@') {
    Some((version, percent)) => (version, Some(percent.trim_end_matches('%'))),
    None => (text, None),
  };
  let version: u64 = version.trim_start_matches('v').parse().map_err(|_| bad())?;
  let percent: u64 = match percent {
    Some(percent) => percent.parse().map_err(|_| bad())?,
    None if alone => 100,
    None => bail!("{text:?} needs its share when two versions are deployed: {text}@50%"),
  };
  Ok((version, percent))
}

/// Runs `outpost versions`.
pub fn run(args: VersionsArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let name = worker_name(args.name)?;
  runtime()?.block_on(async {
    match args.command.unwrap_or(VersionsCommand::List) {
      VersionsCommand::List => list(&api, &name).await,
      VersionsCommand::Deploy { versions } => {
        let alone = versions.len() == 1;
        let shares = versions
          .iter()
          .map(|text| parse_share(text, alone))
          .collect::<anyhow::Result<Vec<_>>>()?;
        let body = json!({
          "versions": shares
            .iter()
            .map(|(version, percent)| json!({ "version": version, "percent": percent }))
            .collect::<Vec<_>>(),
        });
        let answer = api
          .send(Method::POST, &format!("/workers/{name}/deployments"), &body)
          .await?;
        let deployment = &answer["deployment"];
        let label = describe_shares(&deployment["shares"]);
        println!("{name} now serves {label}");
        let epoch = deployment["epoch"]
          .as_u64()
          .context("the deployment has no epoch")?;
        wait_for_edges(&api, epoch, &label, Duration::from_secs(args.timeout)).await
      }
    }
  })
}

/// Prints the worker's versions, the share each serves marked.
async fn list(api: &Api, name: &str) -> anyhow::Result<()> {
  let versions = api
    .call(Method::GET, &format!("/workers/{name}/versions"), None)
    .await?;
  let deployments = api
    .call(Method::GET, &format!("/workers/{name}/deployments"), None)
    .await?;
  let active: BTreeMap<u64, u64> = deployments["deployments"][0]["shares"]
    .as_array()
    .map(|shares| {
      shares
        .iter()
        .filter_map(|s| Some((s["version"].as_u64()?, s["percent"].as_u64()?)))
        .collect()
    })
    .unwrap_or_default();
  println!(
    "{:<8} {:<10} {:<12} {:>10}  uploaded (unix)",
    "version", "serving", "hash", "bytes"
  );
  for version in versions["versions"].as_array().into_iter().flatten() {
    let number = version["number"].as_u64().unwrap_or(0);
    let serving = active
      .get(&number)
      .map_or(String::new(), |p| format!("{p}%"));
    let hash = version["hash"].as_str().unwrap_or("");
    println!(
      "v{:<7} {:<10} {:<12} {:>10}  {}",
      number,
      serving,
      &hash[..hash.len().min(12)],
      version["size"].as_u64().unwrap_or(0),
      version["created_at"].as_i64().unwrap_or(0)
    );
  }
  Ok(())
}
