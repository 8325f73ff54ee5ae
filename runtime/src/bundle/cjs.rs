//! CommonJS modules as ES modules: each `require("literal")` becomes a
//! static import, and the module's code runs inside a function given
//! `exports`, `require`, `module`, `__filename` and `__dirname`, as Node
//! does. The wrapper exports `module.exports` as `default` (its `default`
//! for modules marked `__esModule`, as bundlers do), as `"module.exports"`
//! (what `require` of it returns), and each name that cjs-module-lexer's
//! analysis finds as a named export.
//!
//! `require` with anything but a string literal, or of a module that could
//! not be resolved (an optional dependency, say), throws when it runs, not
//! when the bundle is built.
//!
//! Imports run a module before its importer, where Node runs it when
//! `require` is called. So that code guarding an optional `require` with
//! `try` still works, a module that only `require` reaches keeps what its
//! code throws and throws it again from each `require` of it.

use std::collections::BTreeMap;

use deno_ast::{ParsedSource, ProgramRef};

/// Whether a parsed `.js` file is CommonJS: no `import`/`export` of its own,
/// and it reaches for `require`, `module` or `exports`.
pub(super) fn looks_commonjs(parsed: &ParsedSource) -> bool {
  let has_module_syntax = match parsed.program_ref() {
    ProgramRef::Module(module) => module.body.iter().any(|item| item.is_module_decl()),
    ProgramRef::Script(_) => false,
  };
  let text = parsed.text();
  !has_module_syntax
    && (text.contains("require(") || text.contains("module.exports") || text.contains("exports."))
}

/// What a `require` reaches, for what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Required {
  /// A module of the bundle: CommonJS gives its `module.exports`, an ES
  /// module its namespace.
  Module,
  /// A JSON module: its value.
  Json,
  /// A built-in module: its default export, as Node's `require("events")`
  /// gives EventEmitter itself.
  Builtin,
}

/// What a wrapped module's `require` calls reach.
pub(super) struct Requires {
  /// Resolved requires as written, with what each reaches.
  pub resolved: BTreeMap<String, Required>,
  /// Unresolved requires and why.
  pub missing: BTreeMap<String, String>,
}

/// The ES module that runs CommonJS `code` from `path`, exporting `names`;
/// `only_required` when no `import` reaches it, only `require`.
pub(super) fn wrap(
  code: &str,
  path: &str,
  requires: &Requires,
  names: &[String],
  only_required: bool,
) -> String {
  let json = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
  // Everything before the code goes on its first line, so line numbers in
  // stack traces stay those of the file.
  let mut out = String::new();
  let mut deps = String::new();
  for (index, (written, required)) in requires.resolved.iter().enumerate() {
    let attributes = match required {
      Required::Json => " with { type: \"json\" }",
      Required::Module | Required::Builtin => "",
    };
    out.push_str(&format!(
      "import * as __outpost_dep{index} from {}{attributes};",
      json(written)
    ));
    let value = match required {
      Required::Module => format!("__outpost_dep{index}"),
      Required::Json | Required::Builtin => {
        format!("{{\"module.exports\":__outpost_dep{index}.default}}")
      }
    };
    deps.push_str(&format!("{}:{value},", json(written)));
  }
  let missing = serde_json::to_string(&requires.missing).unwrap_or_else(|_| "{}".into());
  let dir = path.rsplit_once('/').map_or("/", |(dir, _)| dir);
  out.push_str(&format!(
    "const __outpost_deps={{{deps}}};const __outpost_missing={missing};\
     const __outpost_module={{exports:{{}},id:{path},filename:{path},loaded:false}};\
     function __outpost_require(id){{const ns=__outpost_deps[id];\
     if(ns===undefined){{const why=__outpost_missing[id];\
     const e=new Error(\"Cannot find module '\"+id+\"'\"+(why?\": \"+why:\" (only require() of a string literal is bundled)\"));\
     e.code=\"MODULE_NOT_FOUND\";throw e;}}\
     if(ns.__outpost_failure)throw ns.__outpost_failure.error;\
     return \"module.exports\" in ns?ns[\"module.exports\"]:ns;}}\
     let __outpost_failure=null;\
     try{{(function(exports,require,module,__filename,__dirname){{",
    path = json(path),
  ));
  out.push_str(code);
  out.push_str(&format!(
    "\n}}).call(__outpost_module.exports,__outpost_module.exports,__outpost_require,__outpost_module,{},{});\n\
     }}catch(e){{if(!{only_required})throw e;__outpost_failure={{error:e}};}}\n\
     __outpost_module.loaded=true;\n\
     export {{ __outpost_failure as \"__outpost_failure\" }};\n\
     const __outpost_exports=__outpost_module.exports;\n\
     export {{ __outpost_exports as \"module.exports\" }};\n\
     export default (__outpost_exports!==null&&typeof __outpost_exports===\"object\"&&__outpost_exports.__esModule&&\"default\" in __outpost_exports)?__outpost_exports.default:__outpost_exports;\n",
    json(path),
    json(dir),
  ));
  for (index, name) in names.iter().enumerate() {
    if name == "default" || name == "module.exports" {
      continue;
    }
    out.push_str(&format!(
      "const __outpost_n{index}=__outpost_exports==null?undefined:__outpost_exports[{name}];export {{ __outpost_n{index} as {name} }};\n",
      name = json(name),
    ));
  }
  out
}
