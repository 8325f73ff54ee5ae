//! `.dev.vars`: the secrets and vars `outpost dev` adds to `env`, in the
//! dotenv format wrangler reads (`KEY=value`, `# comments`, optional
//! `export `, single or double quotes, `\n` escapes inside double quotes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The file `outpost dev` reads for environment `env`: `.dev.vars.<env>`
/// when it exists, else `.dev.vars`; `None` if neither does.
pub fn dev_vars_file(dir: &Path, env: Option<&str>) -> Option<PathBuf> {
  env
    .map(|env| dir.join(format!(".dev.vars.{env}")))
    .into_iter()
    .chain([dir.join(".dev.vars")])
    .find(|path| path.is_file())
}

/// Reads the dev vars of `dir` for `env` (none: an empty map).
pub fn read_dev_vars(
  dir: &Path,
  env: Option<&str>,
) -> Result<BTreeMap<String, String>, ConfigError> {
  let Some(path) = dev_vars_file(dir, env) else {
    return Ok(BTreeMap::new());
  };
  let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
    path: path.clone(),
    message: e.to_string(),
  })?;
  parse_dotenv(&text).map_err(|message| ConfigError { path, message })
}

/// Parses dotenv text; a malformed line is an error naming its number.
pub fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, String> {
  let mut vars = BTreeMap::new();
  let mut lines = text.lines().enumerate();
  while let Some((index, line)) = lines.next() {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
      continue;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let Some((key, rest)) = line.split_once('=') else {
      return Err(format!("line {}: expected KEY=value", index + 1));
    };
    let key = key.trim();
    if key.is_empty()
      || !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    {
      return Err(format!(
        "line {}: {key:?} is not a variable name",
        index + 1
      ));
    }
    let rest = rest.trim_start();
    let value = match rest.chars().next() {
      Some(quote @ ('"' | '\'')) => {
        // A quoted value may run over several lines.
        let mut body = rest[1..].to_owned();
        loop {
          if let Some(end) = closing_quote(&body, quote) {
            body.truncate(end);
            break;
          }
          match lines.next() {
            Some((_, next)) => {
              body.push('\n');
              body.push_str(next);
            }
            None => return Err(format!("line {}: unclosed {quote}", index + 1)),
          }
        }
        if quote == '"' { unescape(&body) } else { body }
      }
      _ => match rest.find(" #") {
        Some(comment) => rest[..comment].trim_end().to_owned(),
        None => rest.trim_end().to_owned(),
      },
    };
    vars.insert(key.to_owned(), value);
  }
  Ok(vars)
}

/// Where the unescaped closing `quote` is in `text`.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
  let mut escaped = false;
  for (at, c) in text.char_indices() {
    match c {
      '\\' if quote == '"' && !escaped => escaped = true,
      c if c == quote && !escaped => return Some(at),
      _ => escaped = false,
    }
  }
  None
}

fn unescape(text: &str) -> String {
  let mut out = String::with_capacity(text.len());
  let mut chars = text.chars();
  while let Some(c) = chars.next() {
    if c != '\\' {
      out.push(c);
      continue;
    }
    match chars.next() {
      Some('n') => out.push('\n'),
      Some('r') => out.push('\r'),
      Some('t') => out.push('\t'),
      Some(other) => out.push(other),
      None => out.push('\\'),
    }
  }
  out
}
