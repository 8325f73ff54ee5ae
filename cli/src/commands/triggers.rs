//! `outpost triggers`: a deployed worker's cron triggers and when each
//! fires next (from the versions serving it).

use clap::{Args, Subcommand};
use reqwest::Method;

use super::api::{Api, ApiArgs};
use super::deploy::{runtime, worker_name};

/// Arguments of `outpost triggers`.
#[derive(Args)]
#[command(after_help = "Examples:
  outpost triggers                 (the same as `triggers list`)
  outpost triggers list --name nightly-report")]
pub struct TriggersArgs {
  #[command(subcommand)]
  command: Option<TriggersCommand>,
  /// The worker (default: `name` in ./outpost.toml).
  #[arg(long, global = true)]
  name: Option<String>,
  #[command(flatten)]
  api: ApiArgs,
}

#[derive(Subcommand)]
enum TriggersCommand {
  /// List the cron triggers of the versions serving the worker, with the
  /// next firing of each (UTC).
  List,
}

/// Runs `outpost triggers`.
pub fn run(args: TriggersArgs) -> anyhow::Result<()> {
  let api = Api::new(&args.api)?;
  let name = worker_name(args.name)?;
  runtime()?.block_on(async {
    match args.command.unwrap_or(TriggersCommand::List) {
      TriggersCommand::List => {
        let answer = api
          .call(Method::GET, &format!("/workers/{name}/triggers"), None)
          .await?;
        let triggers = answer["triggers"].as_array().cloned().unwrap_or_default();
        if triggers.is_empty() {
          eprintln!("{name} has no cron triggers in the versions serving it");
          return Ok(());
        }
        println!("{:<8} {:<24} next firing (UTC)", "version", "cron");
        for trigger in &triggers {
          println!(
            "v{:<7} {:<24} {}",
            trigger["version"].as_u64().unwrap_or_default(),
            trigger["cron"].as_str().unwrap_or_default(),
            trigger["next"].as_str().unwrap_or("never")
          );
        }
        let recent = answer["recent"].as_array().cloned().unwrap_or_default();
        if !recent.is_empty() {
          println!("\nrecent firings:");
          for firing in &recent {
            let outcome = match firing["ok"].as_bool() {
              Some(true) => format!("ok in {} ms", firing["duration_ms"]),
              Some(false) => format!("exception after {} ms", firing["duration_ms"]),
              None => "running".to_owned(),
            };
            println!(
              "  {:<24} {}  {}  {}",
              firing["cron"].as_str().unwrap_or_default(),
              firing["scheduled"].as_str().unwrap_or_default(),
              firing["edge"].as_str().unwrap_or("-"),
              outcome
            );
          }
        }
        Ok(())
      }
    }
  })
}
