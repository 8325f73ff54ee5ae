//! Import resolution for bundles: what a specifier in a module names.
//!
//! Two resolvers, one per way a bundle is built:
//! - [`ProjectResolver`] resolves like a bundler targeting Workers, on the
//!   project's files: relative paths (extension and `index` optional),
//!   bare specifiers from `node_modules` through package.json `exports`
//!   (conditions `workerd`, `worker`, `browser`, then `import` or
//!   `require`, then `default`), `module`/`main`, `#imports`, and the
//!   runtime's built-in modules (`node:*`, `cloudflare:*`). It is
//!   oxc_resolver, webpack's enhanced-resolve algorithm in Rust.
//! - [`RecordedResolver`] replays the resolutions recorded when the bundle
//!   was built, so an edge resolves exactly as `outpost deploy` did without
//!   needing `package.json` files.

use std::collections::HashMap;
use std::path::Path;

pub use deno_core::ModuleSpecifier;

/// `cloudflare:` modules a worker may import, by their public name, with
/// the internal specifier the runtime registers each under.
const CLOUDFLARE_MODULES: [(&str, &str); 2] = [
  ("cloudflare:workers", "node:outpost/cloudflare-workers"),
  ("cloudflare:sockets", "node:outpost/cloudflare-sockets"),
];

/// Node's built-in module names, which resolve to `node:<name>` only with
/// `nodejs_compat` (or from CommonJS, as Node does).
const NODE_NAMES: [&str; 32] = [
  "assert",
  "async_hooks",
  "buffer",
  "constants",
  "child_process",
  "crypto",
  "diagnostics_channel",
  "dns",
  "events",
  "fs",
  "http",
  "https",
  "module",
  "net",
  "os",
  "path",
  "perf_hooks",
  "process",
  "querystring",
  "readline",
  "stream",
  "string_decoder",
  "timers",
  "tls",
  "tty",
  "url",
  "util",
  "v8",
  "vm",
  "worker_threads",
  "zlib",
  "http2",
];

/// How an import is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
  /// `import` or `export ... from`: must resolve for the bundle to build.
  Import,
  /// `import("literal")`: bundled if it resolves; otherwise it fails when
  /// it runs, as an optional dependency should.
  Dynamic,
  /// `require("literal")` in a CommonJS module; as `Dynamic` if it does not
  /// resolve.
  Require,
}

impl ImportKind {
  /// Whether a failure to resolve stops the bundle from building.
  pub fn required(self) -> bool {
    self == ImportKind::Import
  }
}

/// What an import names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
  /// A file of the bundle.
  File(ModuleSpecifier),
  /// A module built into the runtime, by its internal specifier.
  Builtin(ModuleSpecifier),
}

impl Resolved {
  /// The specifier V8 knows the module by.
  pub fn specifier(&self) -> &ModuleSpecifier {
    match self {
      Resolved::File(s) | Resolved::Builtin(s) => s,
    }
  }
}

/// Resolves the imports of a bundle's modules.
pub trait ModuleResolver {
  /// What `specifier`, written in `referrer`, names; the error says why
  /// nothing.
  fn resolve(
    &self,
    specifier: &str,
    referrer: &ModuleSpecifier,
    kind: ImportKind,
  ) -> Result<Resolved, String>;
}

/// The built-in module `specifier` names, if it names one. `Err` for a
/// Node module Outpost does not provide.
pub fn builtin(specifier: &str, bare_node: bool) -> Option<Result<Resolved, String>> {
  let prefixed;
  let name = match specifier.strip_prefix("node:") {
    Some(_) => specifier,
    None if bare_node && NODE_NAMES.contains(&specifier.split('/').next().unwrap_or("")) => {
      prefixed = format!("node:{specifier}");
      &prefixed
    }
    None if specifier.starts_with("cloudflare:") => specifier,
    None => return None,
  };
  let internal = CLOUDFLARE_MODULES
    .iter()
    .find(|(public, _)| *public == name)
    .map(|(_, internal)| *internal)
    .or_else(|| {
      crate::ext::node::MODULES
        .iter()
        .copied()
        .find(|m| *m == name)
    });
  Some(match internal {
    Some(internal) => ModuleSpecifier::parse(internal)
      .map(Resolved::Builtin)
      .map_err(|e| e.to_string()),
    None => Err(format!("{name} is not available in Outpost")),
  })
}

/// Resolves on the project's files, as a bundler targeting Workers does.
pub struct ProjectResolver {
  esm: oxc_resolver::Resolver,
  cjs: oxc_resolver::Resolver,
  nodejs_compat: bool,
}

impl ProjectResolver {
  /// A resolver; `nodejs_compat` lets bare names (`buffer`, `events`)
  /// import Node's built-ins, as the compatibility flag does in Workers.
  pub fn new(nodejs_compat: bool) -> Self {
    let options = |import: &str| oxc_resolver::ResolveOptions {
      condition_names: ["workerd", "worker", "browser", import, "default"]
        .map(String::from)
        .into(),
      extensions: [
        ".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs", ".jsx", ".json",
      ]
      .map(String::from)
      .into(),
      extension_alias: vec![
        (
          ".js".into(),
          vec![".ts".into(), ".tsx".into(), ".js".into()],
        ),
        (".mjs".into(), vec![".mts".into(), ".mjs".into()]),
      ],
      main_fields: ["module", "main"].map(String::from).into(),
      node_path: false,
      module_type: true,
      ..Default::default()
    };
    Self {
      esm: oxc_resolver::Resolver::new(options("import")),
      cjs: oxc_resolver::Resolver::new(options("require")),
      nodejs_compat,
    }
  }
}

impl ModuleResolver for ProjectResolver {
  fn resolve(
    &self,
    specifier: &str,
    referrer: &ModuleSpecifier,
    kind: ImportKind,
  ) -> Result<Resolved, String> {
    if let Some(builtin) = builtin(specifier, self.nodejs_compat || kind == ImportKind::Require) {
      return builtin;
    }
    if let Ok(url) = ModuleSpecifier::parse(specifier)
      && url.scheme() != "file"
    {
      return Err(format!(
        "{}: URLs cannot be imported; only local files and packages",
        url.scheme()
      ));
    }
    let path = referrer
      .to_file_path()
      .map_err(|()| format!("{referrer} is not a local file"))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let resolver = match kind {
      ImportKind::Import | ImportKind::Dynamic => &self.esm,
      ImportKind::Require => &self.cjs,
    };
    let resolution = resolver.resolve(dir, specifier).map_err(|err| match err {
      oxc_resolver::ResolveError::NotFound(_) if is_bare(specifier) => {
        "package not found in node_modules (run npm install?)".to_owned()
      }
      oxc_resolver::ResolveError::NotFound(_) => {
        "no such file (tried it as written, with a module extension, and as a folder's index)"
          .to_owned()
      }
      other => other.to_string(),
    })?;
    ModuleSpecifier::from_file_path(resolution.path())
      .map(Resolved::File)
      .map_err(|()| format!("{} is not an absolute path", resolution.path().display()))
  }
}

/// Whether `specifier` names a package rather than a path.
fn is_bare(specifier: &str) -> bool {
  !(specifier.starts_with("./")
    || specifier.starts_with("../")
    || specifier.starts_with('/')
    || specifier == "."
    || specifier == "..")
}

/// Replays recorded resolutions: (referrer, specifier) to what it named.
/// Anything not recorded resolves as a plain relative URL.
#[derive(Debug, Default)]
pub struct RecordedResolver {
  imports: HashMap<ModuleSpecifier, HashMap<String, ModuleSpecifier>>,
}

impl RecordedResolver {
  /// A resolver replaying `imports`.
  pub fn new(imports: HashMap<ModuleSpecifier, HashMap<String, ModuleSpecifier>>) -> Self {
    Self { imports }
  }
}

impl ModuleResolver for RecordedResolver {
  fn resolve(
    &self,
    specifier: &str,
    referrer: &ModuleSpecifier,
    _kind: ImportKind,
  ) -> Result<Resolved, String> {
    if let Some(target) = self.imports.get(referrer).and_then(|m| m.get(specifier)) {
      return Ok(match target.scheme() {
        "file" => Resolved::File(target.clone()),
        _ => Resolved::Builtin(target.clone()),
      });
    }
    if let Some(builtin) = builtin(specifier, false) {
      return builtin;
    }
    plain_relative(specifier, referrer)
      .map(Resolved::File)
      .ok_or_else(|| "not recorded in the bundle".to_owned())
  }
}

/// What `specifier` names as a plain URL relative to `referrer`, the way
/// a browser resolves it; `None` for a bare specifier.
pub fn plain_relative(specifier: &str, referrer: &ModuleSpecifier) -> Option<ModuleSpecifier> {
  if is_bare(specifier) {
    return None;
  }
  deno_core::resolve_import(specifier, referrer.as_str()).ok()
}
