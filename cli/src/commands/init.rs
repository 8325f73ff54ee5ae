//! `outpost init`: a new, runnable Workers project from a template
//! (`cli/templates/`): wrangler.toml, the worker, and for `hono` a
//! package.json. Nothing is overwritten.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use outpost_edge::config::{CONFIG_FILE, WRANGLER_FILES};

/// Arguments of `outpost init`.
#[derive(Args)]
#[command(after_help = "Examples:
  outpost init my-worker                  (then: cd my-worker && outpost dev)
  outpost init api --template hono        (then: cd api && npm install && outpost dev)
  outpost init . --template scheduled --name nightly-report")]
pub struct InitArgs {
  /// The project's folder (made if missing; default: here).
  #[arg(default_value = ".")]
  dir: PathBuf,
  /// What to start from.
  #[arg(long, short = 't', value_enum, default_value_t = Template::Hello)]
  template: Template,
  /// The worker's name (default: the folder's name).
  #[arg(long)]
  name: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Template {
  /// A module worker answering every request.
  Hello,
  /// A Hono app in TypeScript (needs `npm install`).
  Hono,
  /// A worker with a cron trigger and a fetch handler.
  Scheduled,
}

/// The files of `template`: path in the project, and text.
fn files(template: Template) -> &'static [(&'static str, &'static str)] {
  const GITIGNORE: &str = "node_modules/\n.outpost/\n.dev.vars*\n";
  match template {
    Template::Hello => &[
      (
        "wrangler.toml",
        include_str!("../../templates/hello/wrangler.toml"),
      ),
      (
        "src/index.js",
        include_str!("../../templates/hello/src/index.js"),
      ),
      (".gitignore", GITIGNORE),
    ],
    Template::Hono => &[
      (
        "wrangler.toml",
        include_str!("../../templates/hono/wrangler.toml"),
      ),
      (
        "package.json",
        include_str!("../../templates/hono/package.json"),
      ),
      (
        "src/index.ts",
        include_str!("../../templates/hono/src/index.ts"),
      ),
      (".gitignore", GITIGNORE),
    ],
    Template::Scheduled => &[
      (
        "wrangler.toml",
        include_str!("../../templates/scheduled/wrangler.toml"),
      ),
      (
        "src/index.js",
        include_str!("../../templates/scheduled/src/index.js"),
      ),
      (".gitignore", GITIGNORE),
    ],
  }
}

/// A worker name from a folder's name: lowercase letters, digits and `-`.
fn name_from(dir: &Path) -> anyhow::Result<String> {
  let absolute =
    std::path::absolute(dir).with_context(|| format!("where is {}?", dir.display()))?;
  let folder = absolute
    .file_name()
    .and_then(|name| name.to_str())
    .unwrap_or("worker");
  let mut name = String::new();
  for c in folder.chars() {
    if c.is_ascii_alphanumeric() {
      name.push(c.to_ascii_lowercase());
    } else if !name.ends_with('-') {
      name.push('-');
    }
  }
  let name = name.trim_matches('-');
  Ok(if name.is_empty() {
    "worker".to_owned()
  } else {
    name.chars().take(63).collect()
  })
}

fn check_name(name: &str) -> anyhow::Result<()> {
  let valid = !name.is_empty()
    && name.len() <= 63
    && name
      .chars()
      .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    && !name.starts_with('-');
  if !valid {
    bail!("bad worker name {name:?}: use 1 to 63 lowercase letters, digits and -");
  }
  Ok(())
}

/// Today (UTC) as YYYY-MM-DD, for `compatibility_date`.
fn today() -> String {
  let seconds = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0, |d| d.as_secs());
  let days = i64::try_from(seconds / 86_400).unwrap_or(0);
  // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
  let z = days + 719_468;
  let era = z.div_euclid(146_097);
  let day_of_era = z.rem_euclid(146_097);
  let year_of_era =
    (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
  let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  let month_index = (5 * day_of_year + 2) / 153;
  let day = day_of_year - (153 * month_index + 2) / 5 + 1;
  let month = if month_index < 10 {
    month_index + 3
  } else {
    month_index - 9
  };
  let year = year_of_era + era * 400 + i64::from(month <= 2);
  format!("{year:04}-{month:02}-{day:02}")
}

/// Runs `outpost init`.
pub fn run(args: InitArgs) -> anyhow::Result<()> {
  let name = match args.name {
    Some(name) => name,
    None => name_from(&args.dir)?,
  };
  check_name(&name)?;
  if let Some(existing) = WRANGLER_FILES
    .iter()
    .chain([&CONFIG_FILE])
    .map(|file| args.dir.join(file))
    .find(|path| path.exists())
  {
    bail!(
      "{} already holds a project ({}): nothing was written",
      args.dir.display(),
      existing.display()
    );
  }
  let files = files(args.template);
  for (path, _) in files {
    let target = args.dir.join(path);
    if target.exists() {
      bail!("{} exists: nothing was written", target.display());
    }
  }
  let date = today();
  for (path, text) in files {
    let target = args.dir.join(path);
    if let Some(parent) = target.parent() {
      std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = text.replace("{name}", &name).replace("{date}", &date);
    std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    println!("  {}", target.display());
  }
  let cd = if args.dir == Path::new(".") {
    String::new()
  } else {
    format!("cd {} && ", args.dir.display())
  };
  let install = if args.template == Template::Hono {
    "npm install && "
  } else {
    ""
  };
  println!("made worker {name}; next: {cd}{install}outpost dev");
  Ok(())
}
