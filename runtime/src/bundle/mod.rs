//! Worker bundles: every module of one worker version, read, checked and
//! transpiled once, then served to isolates from memory.
//!
//! A bundle is immutable. Hot reload builds a new one, so isolates running
//! the old version keep seeing exactly the code they started with.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use deno_ast::swc::ast::{ModuleDecl, ModuleItem};
use deno_ast::{MediaType, ParseParams, ParsedSource, ProgramRef};
use deno_core::error::ModuleLoaderError;
use deno_core::{
  ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleSource,
  ModuleSourceCode, ModuleSpecifier, ModuleType, RequestedModuleType, ResolutionKind,
  SourceCodeCacheInfo,
};
use deno_error::JsErrorBox;

use crate::code_cache::{CodeCacheDir, code_sha256};
use crate::ext::node::{BundleFiles, ModuleFiles};
use crate::resolve::{ImportKind, ModuleResolver, ProjectResolver, Resolved};

mod cjs;
mod scan;

/// A module's source map, as JSON bytes.
type SourceMap = Arc<[u8]>;

/// What each module's imports resolved to: referrer, then the specifier as
/// written, then the module it names.
pub type Imports = HashMap<ModuleSpecifier, HashMap<String, ModuleSpecifier>>;

/// Largest single module accepted, to keep a stray file from eating memory.
const MAX_MODULE_BYTES: u64 = 32 * 1024 * 1024;

/// Why a bundle could not be built. Messages name the file, and for syntax
/// errors the line and column.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
  /// A module file could not be read.
  #[error("cannot read {path}: {source}")]
  Read {
    /// The file.
    path: PathBuf,
    /// The I/O error.
    source: std::io::Error,
  },
  /// A module file is larger than [`MAX_MODULE_BYTES`].
  #[error("{path} is {size} bytes; modules are limited to {MAX_MODULE_BYTES} bytes")]
  TooLarge {
    /// The file.
    path: PathBuf,
    /// Its size in bytes.
    size: u64,
  },
  /// A module's file type is not JavaScript, TypeScript or JSON.
  #[error(
    "{0}: unsupported module type (expected .js, .mjs, .cjs, .ts, .mts, .cts, .jsx, .tsx or .json)"
  )]
  UnsupportedType(String),
  /// A module does not parse; the message carries file:line:col.
  #[error("syntax error: {0}")]
  Syntax(String),
  /// TypeScript could not be transpiled.
  #[error("cannot transpile {specifier}: {message}")]
  Transpile {
    /// The module.
    specifier: String,
    /// What went wrong.
    message: String,
  },
  /// An import specifier that does not resolve to a local file.
  #[error("{referrer}: cannot import \"{specifier}\": {reason}")]
  Import {
    /// The importing module.
    referrer: String,
    /// The specifier as written.
    specifier: String,
    /// Why it was refused.
    reason: String,
  },
}

/// One module of a bundle, ready for V8. Cheap to clone.
#[derive(Debug, Clone)]
struct BundleModule {
  code: Arc<str>,
  /// The SHA-256 of `code` in hex; names its code cache on disk.
  sha256: Arc<str>,
  /// Identifies `code` for V8's code cache (the start of `sha256`).
  hash: u64,
  module_type: ModuleType,
  source_map: Option<Arc<[u8]>>,
}

impl BundleModule {
  fn new(code: Arc<str>, module_type: ModuleType, source_map: Option<Arc<[u8]>>) -> Self {
    let sha256 = code_sha256(&code);
    let hash = u64::from_str_radix(&sha256[..16], 16).unwrap_or_default();
    Self {
      code,
      sha256: sha256.into(),
      hash,
      module_type,
      source_map,
    }
  }
}

/// Every module of one worker version.
#[derive(Debug)]
pub struct WorkerBundle {
  main: ModuleSpecifier,
  modules: HashMap<ModuleSpecifier, BundleModule>,
  /// What each import in each module resolved to, by the specifier as
  /// written.
  imports: Imports,
  /// Source map files that modules name in a `sourceMappingURL` comment
  /// (bundled code), by their URL.
  external_maps: HashMap<ModuleSpecifier, Arc<[u8]>>,
  /// V8 code caches of the modules, filled by the first isolate that
  /// compiles each one, so later isolates of the version skip compiling.
  code_cache: Mutex<HashMap<ModuleSpecifier, Arc<[u8]>>>,
  /// Where the code caches are also kept on disk, if anywhere.
  disk_cache: Option<CodeCacheDir>,
  /// The modules as files, made when a worker first reads them.
  module_files: OnceLock<BundleFiles>,
}

impl WorkerBundle {
  /// Reads the entry module and everything it imports statically, resolved
  /// as in a project without `nodejs_compat` (see [`ProjectResolver`]).
  pub fn load(entry: &Path) -> Result<Self, BundleError> {
    Self::load_with(entry, &ProjectResolver::new(false))
  }

  /// Reads the entry module and everything it imports statically or
  /// `require`s with a literal name, resolved by `resolver`; transpiles
  /// TypeScript and wraps CommonJS.
  pub fn load_with(entry: &Path, resolver: &dyn ModuleResolver) -> Result<Self, BundleError> {
    // Canonical, so the entry's specifier matches what V8 resolves imports to.
    let entry = std::fs::canonicalize(entry).map_err(|source| BundleError::Read {
      path: entry.to_owned(),
      source,
    })?;
    let main = ModuleSpecifier::from_file_path(&entry).map_err(|()| BundleError::Import {
      referrer: "(command line)".into(),
      specifier: entry.display().to_string(),
      reason: "not an absolute file path".into(),
    })?;
    let mut sources: HashMap<ModuleSpecifier, Source> = HashMap::new();
    let mut imports = Imports::new();
    let mut missing: HashMap<ModuleSpecifier, BTreeMap<String, String>> = HashMap::new();
    let mut queue = VecDeque::from([main.clone()]);
    // Modules some `import` reaches (the others only `require` reaches).
    let mut imported = HashSet::from([main.clone()]);
    while let Some(specifier) = queue.pop_front() {
      if sources.contains_key(&specifier) {
        continue;
      }
      let source = read_module(&specifier)?;
      for (written, kind) in source.imports() {
        match resolver.resolve(&written, &specifier, kind) {
          Ok(resolved) => {
            if let Resolved::File(file) = &resolved
              && !sources.contains_key(file)
            {
              queue.push_back(file.clone());
            }
            let target = resolved.specifier().clone();
            if kind != ImportKind::Require {
              imported.insert(target.clone());
            }
            imports
              .entry(specifier.clone())
              .or_default()
              .insert(written, target);
          }
          // An optional dependency: its require() or import() fails when
          // it runs.
          Err(reason) if !kind.required() => {
            missing
              .entry(specifier.clone())
              .or_default()
              .insert(written, reason);
          }
          Err(reason) => {
            return Err(BundleError::Import {
              referrer: specifier.to_string(),
              specifier: written,
              reason,
            });
          }
        }
      }
      sources.insert(specifier, source);
    }
    let mut modules = HashMap::new();
    let mut external_maps = HashMap::new();
    for (specifier, source) in &sources {
      let only_required = !imported.contains(specifier);
      let module = source.finish(
        specifier,
        &imports,
        missing.remove(specifier),
        &sources,
        only_required,
      )?;
      modules.insert(specifier.clone(), module);
      if let Some((url, map)) = source.external_map(specifier) {
        external_maps.insert(url, map);
      }
    }
    Ok(Self {
      main,
      modules,
      imports,
      external_maps,
      code_cache: Mutex::default(),
      disk_cache: None,
      module_files: OnceLock::new(),
    })
  }

  /// What each import of each module resolved to, by the specifier as
  /// written: what a [`crate::resolve::RecordedResolver`] replays on an edge.
  pub fn imports(&self) -> &Imports {
    &self.imports
  }

  /// Keeps the modules' V8 code caches in `dir` as well as in memory: the
  /// caches already there are used at once (an edge node restarting skips
  /// compiling), and new ones are written there as isolates make them.
  pub fn with_code_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
    let disk = CodeCacheDir::new(dir.into());
    let stored = self
      .modules
      .iter()
      .filter(|(_, m)| m.module_type == ModuleType::JavaScript)
      .filter_map(|(specifier, m)| Some((specifier.clone(), disk.read(&m.sha256)?.into())));
    self
      .code_cache
      .get_mut()
      .unwrap_or_else(|e| e.into_inner())
      .extend(stored);
    self.disk_cache = Some(disk);
    self
  }

  /// The entry module.
  pub fn main(&self) -> &ModuleSpecifier {
    &self.main
  }

  /// How many of the bundle's modules have a V8 code cache so far.
  pub fn cached_modules(&self) -> usize {
    self
      .code_cache
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .len()
  }

  /// The files this bundle was built from (modules and the source maps
  /// they name), for watching and for uploading.
  pub fn files(&self) -> Vec<PathBuf> {
    self
      .modules
      .keys()
      .chain(self.external_maps.keys())
      .filter_map(|s| s.to_file_path().ok())
      .collect()
  }
}

impl ModuleFiles for WorkerBundle {
  /// The modules as read-only files (node:fs's `/bundle`), made on first use.
  fn module_files(&self) -> &BundleFiles {
    self
      .module_files
      .get_or_init(|| BundleFiles::new(self.modules.iter().map(|(s, m)| (s, &m.code))))
  }
}

fn read_source(path: &Path) -> Result<String, BundleError> {
  let size = std::fs::metadata(path)
    .map_err(|source| BundleError::Read {
      path: path.to_owned(),
      source,
    })?
    .len();
  if size > MAX_MODULE_BYTES {
    return Err(BundleError::TooLarge {
      path: path.to_owned(),
      size,
    });
  }
  std::fs::read_to_string(path).map_err(|source| BundleError::Read {
    path: path.to_owned(),
    source,
  })
}

/// A module file read and parsed, its imports not yet resolved.
enum Source {
  Json(String),
  Esm(ParsedSource),
  CommonJs(ParsedSource),
}

/// Reads and parses one module.
fn read_module(specifier: &ModuleSpecifier) -> Result<Source, BundleError> {
  let path = specifier
    .to_file_path()
    .map_err(|()| BundleError::UnsupportedType(specifier.to_string()))?;
  let media_type = MediaType::from_specifier(specifier);
  match media_type {
    MediaType::Json => return Ok(Source::Json(read_source(&path)?)),
    MediaType::JavaScript
    | MediaType::Mjs
    | MediaType::Cjs
    | MediaType::Jsx
    | MediaType::TypeScript
    | MediaType::Mts
    | MediaType::Cts
    | MediaType::Tsx => {}
    _ => return Err(BundleError::UnsupportedType(specifier.to_string())),
  }
  let parsed = deno_ast::parse_program(ParseParams {
    specifier: specifier.clone(),
    text: read_source(&path)?.into(),
    media_type,
    capture_tokens: false,
    scope_analysis: false,
    maybe_syntax: None,
  })
  .map_err(|diagnostic| BundleError::Syntax(diagnostic.to_string()))?;
  let commonjs = match media_type {
    MediaType::Cjs | MediaType::Cts => true,
    MediaType::JavaScript => cjs::looks_commonjs(&parsed),
    _ => false,
  };
  Ok(match commonjs {
    true => Source::CommonJs(parsed),
    false => Source::Esm(parsed),
  })
}

impl Source {
  /// The specifiers this module imports, as written, with how.
  fn imports(&self) -> Vec<(String, ImportKind)> {
    match self {
      Source::Json(_) => Vec::new(),
      Source::Esm(parsed) => {
        let mut imports: Vec<_> = static_imports(parsed.program_ref())
          .into_iter()
          .map(|s| (s, ImportKind::Import))
          .collect();
        for dynamic in scan::dynamic_imports(parsed) {
          if !imports.iter().any(|(s, _)| *s == dynamic) {
            imports.push((dynamic, ImportKind::Dynamic));
          }
        }
        imports
      }
      Source::CommonJs(parsed) => scan::required(parsed)
        .into_iter()
        .map(|s| (s, ImportKind::Require))
        .collect(),
    }
  }

  /// The names a CommonJS module exports, following its re-exports
  /// (`module.exports = require("./x")`) among `sources`.
  fn commonjs_names(
    &self,
    specifier: &ModuleSpecifier,
    imports: &Imports,
    sources: &HashMap<ModuleSpecifier, Source>,
    depth: usize,
  ) -> Vec<String> {
    let Source::CommonJs(parsed) = self else {
      return Vec::new();
    };
    let analysis = parsed.analyze_cjs();
    let mut names = analysis.exports;
    if depth < 8 {
      for reexport in analysis.reexports {
        let target = imports.get(specifier).and_then(|m| m.get(&reexport));
        if let Some((target, source)) = target.and_then(|t| Some((t, sources.get(t)?))) {
          names.extend(source.commonjs_names(target, imports, sources, depth + 1));
        }
      }
    }
    names.sort();
    names.dedup();
    names
  }

  /// The source map file a JavaScript module names in its
  /// `//# sourceMappingURL=` comment, read if it is there (an inline
  /// `data:` map needs nothing: V8 and deno_core read it from the code).
  fn external_map(&self, specifier: &ModuleSpecifier) -> Option<(ModuleSpecifier, Arc<[u8]>)> {
    let (Source::Esm(parsed) | Source::CommonJs(parsed)) = self else {
      return None;
    };
    let text = parsed.text();
    let at = text.rfind("//# sourceMappingURL=")?;
    let url = text[at + "//# sourceMappingURL=".len()..]
      .lines()
      .next()?
      .trim();
    if url.starts_with("data:") {
      return None;
    }
    let map_url = specifier.join(url).ok().filter(|u| u.scheme() == "file")?;
    let path = map_url.to_file_path().ok()?;
    let size = std::fs::metadata(&path).ok()?.len();
    if size > MAX_MODULE_BYTES {
      return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    Some((map_url, bytes.into()))
  }

  /// The module as V8 loads it: TypeScript transpiled, CommonJS wrapped.
  fn finish(
    &self,
    specifier: &ModuleSpecifier,
    imports: &Imports,
    missing: Option<BTreeMap<String, String>>,
    sources: &HashMap<ModuleSpecifier, Source>,
    only_required: bool,
  ) -> Result<BundleModule, BundleError> {
    let parsed = match self {
      Source::Json(text) => {
        return Ok(BundleModule::new(
          text.as_str().into(),
          ModuleType::Json,
          None,
        ));
      }
      Source::Esm(parsed) | Source::CommonJs(parsed) => parsed,
    };
    let (code, source_map) = transpiled(specifier, parsed)?;
    let Source::CommonJs(_) = self else {
      return Ok(BundleModule::new(
        code.into(),
        ModuleType::JavaScript,
        source_map,
      ));
    };
    // What each require() reaches, and so what it returns.
    let requires = cjs::Requires {
      resolved: imports
        .get(specifier)
        .into_iter()
        .flatten()
        .map(|(written, target)| {
          let required = match target.scheme() {
            "file" if target.path().ends_with(".json") => cjs::Required::Json,
            "file" => cjs::Required::Module,
            _ => cjs::Required::Builtin,
          };
          (written.clone(), required)
        })
        .collect(),
      missing: missing.unwrap_or_default(),
    };
    let names = self.commonjs_names(specifier, imports, sources, 0);
    let path = specifier
      .to_file_path()
      .map(|p| p.display().to_string())
      .unwrap_or_else(|()| specifier.to_string());
    let code = cjs::wrap(&code, &path, &requires, &names, only_required);
    Ok(BundleModule::new(
      code.into(),
      ModuleType::JavaScript,
      source_map,
    ))
  }
}

/// The code V8 runs for a parsed module: as written for JavaScript,
/// transpiled (with a source map) otherwise.
fn transpiled(
  specifier: &ModuleSpecifier,
  parsed: &ParsedSource,
) -> Result<(String, Option<SourceMap>), BundleError> {
  match parsed.media_type() {
    MediaType::JavaScript | MediaType::Mjs | MediaType::Cjs => {
      return Ok((parsed.text().to_string(), None));
    }
    _ => {}
  }
  let emitted = parsed
    .clone()
    .transpile(
      &deno_ast::TranspileOptions {
        imports_not_used_as_values: deno_ast::ImportsNotUsedAsValues::Remove,
        decorators: deno_ast::DecoratorsTranspileOption::Ecma,
        ..Default::default()
      },
      &deno_ast::TranspileModuleOptions { module_kind: None },
      &deno_ast::EmitOptions {
        source_map: deno_ast::SourceMapOption::Separate,
        inline_sources: true,
        ..Default::default()
      },
    )
    .map_err(|err| BundleError::Transpile {
      specifier: specifier.to_string(),
      message: err.to_string(),
    })?
    .into_source();
  let source_map = emitted.source_map.map(|map| map.into_bytes().into());
  Ok((emitted.text, source_map))
}

/// The specifiers a module imports or re-exports from, as written.
fn static_imports(program: ProgramRef<'_>) -> Vec<String> {
  let ProgramRef::Module(module) = program else {
    return Vec::new();
  };
  let mut imports = Vec::new();
  for item in &module.body {
    let source = match item {
      ModuleItem::ModuleDecl(ModuleDecl::Import(decl)) if !decl.type_only => &decl.src,
      ModuleItem::ModuleDecl(ModuleDecl::ExportAll(decl)) if !decl.type_only => &decl.src,
      ModuleItem::ModuleDecl(ModuleDecl::ExportNamed(decl)) if !decl.type_only => match &decl.src {
        Some(src) => src,
        None => continue,
      },
      _ => continue,
    };
    let written = source.value.to_string_lossy().into_owned();
    if !imports.contains(&written) {
      imports.push(written);
    }
  }
  imports
}

/// Serves a [`WorkerBundle`]'s modules to one isolate. A pooled isolate is
/// created before its worker is known, so the bundle can be bound later.
#[derive(Default)]
pub struct BundleLoader {
  bundle: RefCell<Option<Arc<WorkerBundle>>>,
}

impl BundleLoader {
  /// A loader for `bundle`.
  pub fn new(bundle: Arc<WorkerBundle>) -> Self {
    Self {
      bundle: RefCell::new(Some(bundle)),
    }
  }

  /// Binds the bundle this isolate will load from.
  pub fn bind(&self, bundle: Arc<WorkerBundle>) {
    *self.bundle.borrow_mut() = Some(bundle);
  }

  fn cached_code(&self, specifier: &ModuleSpecifier) -> Option<Arc<[u8]>> {
    let bundle = self.bundle.borrow();
    let cache = bundle
      .as_ref()?
      .code_cache
      .lock()
      .unwrap_or_else(|e| e.into_inner());
    cache.get(specifier).cloned()
  }

  fn module(&self, specifier: &ModuleSpecifier) -> Option<BundleModule> {
    self
      .bundle
      .borrow()
      .as_ref()?
      .modules
      .get(specifier)
      .cloned()
  }
}

impl ModuleLoader for BundleLoader {
  fn resolve(
    &self,
    specifier: &str,
    referrer: &str,
    _kind: ResolutionKind,
  ) -> Result<ModuleSpecifier, ModuleLoaderError> {
    // What the bundle recorded when it was built, then the runtime's own
    // modules, then a plain URL (a dynamic import of a bundled file).
    let recorded = ModuleSpecifier::parse(referrer).ok().and_then(|referrer| {
      let bundle = self.bundle.borrow();
      let imports = bundle.as_ref()?.imports.get(&referrer)?;
      imports.get(specifier).cloned()
    });
    if let Some(target) = recorded {
      return Ok(target);
    }
    if let Some(builtin) = crate::resolve::builtin(specifier, false) {
      return builtin
        .map(|resolved| resolved.specifier().clone())
        .map_err(JsErrorBox::type_error);
    }
    deno_core::resolve_import(specifier, referrer).map_err(|_| {
      JsErrorBox::type_error(format!(
        "cannot import \"{specifier}\" from {referrer}: it was not bundled (a package that \
         did not resolve when the worker was built, or an import whose name is not a string literal)"
      ))
    })
  }

  fn load(
    &self,
    specifier: &ModuleSpecifier,
    _referrer: Option<&ModuleLoadReferrer>,
    options: ModuleLoadOptions,
  ) -> ModuleLoadResponse {
    let result = match self.module(specifier) {
      // JSON imported without `with { type: "json" }`, as bundlers allow:
      // its value as the default export (JSON is a JavaScript expression).
      Some(module)
        if module.module_type == ModuleType::Json
          && options.requested_module_type == RequestedModuleType::None =>
      {
        Ok(ModuleSource::new(
          ModuleType::JavaScript,
          ModuleSourceCode::String(format!("export default {};\n", module.code).into()),
          specifier,
          None,
        ))
      }
      Some(module) => {
        let cache = (module.module_type == ModuleType::JavaScript).then(|| SourceCodeCacheInfo {
          hash: module.hash,
          data: self
            .cached_code(specifier)
            .map(|data| Cow::Owned(data.to_vec())),
        });
        Ok(ModuleSource::new(
          module.module_type,
          ModuleSourceCode::String(module.code.to_string().into()),
          specifier,
          cache,
        ))
      }
      None => Err(JsErrorBox::type_error(format!(
        "module {specifier} is not part of this worker's bundle (only static imports are bundled)"
      ))),
    };
    ModuleLoadResponse::Sync(result)
  }

  fn code_cache_ready(
    &self,
    specifier: ModuleSpecifier,
    hash: u64,
    code_cache: &[u8],
  ) -> Pin<Box<dyn Future<Output = ()>>> {
    let bundle = self.bundle.borrow();
    let Some(bundle) = bundle.as_ref() else {
      return Box::pin(async {});
    };
    let Some(module) = bundle.modules.get(&specifier).filter(|m| m.hash == hash) else {
      return Box::pin(async {});
    };
    if let Some(disk) = bundle.disk_cache.clone() {
      let (sha256, payload) = (module.sha256.clone(), code_cache.to_vec());
      let write = move || disk.write(&sha256, &payload);
      // Off the executor thread when there is a runtime to hand it to.
      match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(write)),
        Err(_) => write(),
      }
    }
    bundle
      .code_cache
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .insert(specifier, code_cache.into());
    Box::pin(async {})
  }

  fn load_external_source_map(&self, source_map_url: &str) -> Option<Cow<'_, [u8]>> {
    let url = ModuleSpecifier::parse(source_map_url).ok()?;
    let bundle = self.bundle.borrow();
    let map = bundle.as_ref()?.external_maps.get(&url)?;
    Some(Cow::Owned(map.to_vec()))
  }

  /// Stack traces name the original sources a bundle's source map lists,
  /// whether or not they were deployed with it: the name and line are
  /// what the reader needs.
  fn source_map_source_exists(&self, source_url: &str) -> Option<bool> {
    Some(source_url.starts_with("file:"))
  }

  fn get_source_map(&self, specifier: &str) -> Option<Cow<'_, [u8]>> {
    let specifier = ModuleSpecifier::parse(specifier).ok()?;
    let map = self.module(&specifier)?.source_map?;
    Some(Cow::Owned(map.to_vec()))
  }
}
