//! Worker bundles: every module of one worker version, read, checked and
//! transpiled once, then served to isolates from memory.
//!
//! A bundle is immutable. Hot reload builds a new one, so isolates running
//! the old version keep seeing exactly the code they started with.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use deno_ast::swc::ast::{ModuleDecl, ModuleItem};
use deno_ast::{MediaType, ParseParams, ProgramRef};
use deno_core::error::ModuleLoaderError;
use deno_core::{
  ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleSource,
  ModuleSourceCode, ModuleSpecifier, ModuleType, ResolutionKind, SourceCodeCacheInfo,
};
use deno_error::JsErrorBox;

use crate::code_cache::{CodeCacheDir, code_sha256};

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
  #[error("{0}: unsupported module type (expected .js, .mjs, .ts, .mts, .jsx, .tsx or .json)")]
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
  /// V8 code caches of the modules, filled by the first isolate that
  /// compiles each one, so later isolates of the version skip compiling.
  code_cache: Mutex<HashMap<ModuleSpecifier, Arc<[u8]>>>,
  /// Where the code caches are also kept on disk, if anywhere.
  disk_cache: Option<CodeCacheDir>,
}

impl WorkerBundle {
  /// Reads the entry module and everything it imports statically, following
  /// relative imports, and transpiles TypeScript.
  pub fn load(entry: &Path) -> Result<Self, BundleError> {
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
    let mut modules = HashMap::new();
    let mut queue = VecDeque::from([main.clone()]);
    while let Some(specifier) = queue.pop_front() {
      if modules.contains_key(&specifier) {
        continue;
      }
      let (module, imports) = load_module(&specifier)?;
      modules.insert(specifier, module);
      queue.extend(imports.into_iter().filter(|s| !modules.contains_key(s)));
    }
    Ok(Self {
      main,
      modules,
      code_cache: Mutex::default(),
      disk_cache: None,
    })
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

  /// The files this bundle was built from, for watching.
  pub fn files(&self) -> Vec<PathBuf> {
    self
      .modules
      .keys()
      .filter_map(|s| s.to_file_path().ok())
      .collect()
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

/// Reads and prepares one module, returning it with its static imports.
fn load_module(
  specifier: &ModuleSpecifier,
) -> Result<(BundleModule, Vec<ModuleSpecifier>), BundleError> {
  let path = specifier
    .to_file_path()
    .map_err(|()| BundleError::UnsupportedType(specifier.to_string()))?;
  let media_type = MediaType::from_specifier(specifier);
  let transpile = match media_type {
    MediaType::JavaScript | MediaType::Mjs => false,
    MediaType::Jsx | MediaType::TypeScript | MediaType::Mts | MediaType::Tsx => true,
    MediaType::Json => {
      let module = BundleModule::new(read_source(&path)?.into(), ModuleType::Json, None);
      return Ok((module, Vec::new()));
    }
    _ => return Err(BundleError::UnsupportedType(specifier.to_string())),
  };
  let text = read_source(&path)?;
  let parsed = deno_ast::parse_module(ParseParams {
    specifier: specifier.clone(),
    text: text.into(),
    media_type,
    capture_tokens: false,
    scope_analysis: false,
    maybe_syntax: None,
  })
  .map_err(|diagnostic| BundleError::Syntax(diagnostic.to_string()))?;
  let imports = static_imports(specifier, parsed.program_ref())?;
  if !transpile {
    let module = BundleModule::new(parsed.text().clone(), ModuleType::JavaScript, None);
    return Ok((module, imports));
  }
  let emitted = parsed
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
  let module = BundleModule::new(emitted.text.into(), ModuleType::JavaScript, source_map);
  Ok((module, imports))
}

/// The modules a module imports or re-exports from, resolved against it.
fn static_imports(
  referrer: &ModuleSpecifier,
  program: ProgramRef<'_>,
) -> Result<Vec<ModuleSpecifier>, BundleError> {
  let ProgramRef::Module(module) = program else {
    return Ok(Vec::new());
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
    let written = source.value.to_string_lossy();
    imports.push(resolve_local(&written, referrer)?);
  }
  Ok(imports)
}

/// Resolves an import to a file inside the bundle's reach: relative and
/// absolute file paths only, since a bundle carries no package manager.
fn resolve_local(
  specifier: &str,
  referrer: &ModuleSpecifier,
) -> Result<ModuleSpecifier, BundleError> {
  let refuse = |reason: &str| BundleError::Import {
    referrer: referrer.to_string(),
    specifier: specifier.to_owned(),
    reason: reason.to_owned(),
  };
  let resolved = deno_core::resolve_import(specifier, referrer.as_str())
    .map_err(|_| refuse("only relative imports (./, ../) of local files are supported"))?;
  if resolved.scheme() != "file" {
    return Err(refuse("only local files can be imported"));
  }
  Ok(resolved)
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
    deno_core::resolve_import(specifier, referrer).map_err(JsErrorBox::from_err)
  }

  fn load(
    &self,
    specifier: &ModuleSpecifier,
    _referrer: Option<&ModuleLoadReferrer>,
    _options: ModuleLoadOptions,
  ) -> ModuleLoadResponse {
    let result = match self.module(specifier) {
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
        "module {specifier} is not part of this worker's bundle (only static imports of local files are bundled)"
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

  fn get_source_map(&self, specifier: &str) -> Option<Cow<'_, [u8]>> {
    let specifier = ModuleSpecifier::parse(specifier).ok()?;
    let map = self.module(&specifier)?.source_map?;
    Some(Cow::Owned(map.to_vec()))
  }
}
