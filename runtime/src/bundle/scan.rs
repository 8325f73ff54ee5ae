//! Finds the modules a parsed module loads by call: `require("literal")`
//! in CommonJS and `import("literal")` anywhere, so the bundle can carry
//! them. Calls with anything but a string literal are left to fail when
//! they run.

use deno_ast::swc::ast::{Callee, Expr, Lit};
use deno_ast::swc::ecma_visit::{Visit, VisitWith};
use deno_ast::{ParsedSource, ProgramRef};

/// The string literals passed to `require(...)` in the module, in order of
/// first appearance.
pub(super) fn required(parsed: &ParsedSource) -> Vec<String> {
  literal_calls(parsed, CallKind::Require)
}

/// The string literals passed to `import(...)` in the module.
pub(super) fn dynamic_imports(parsed: &ParsedSource) -> Vec<String> {
  literal_calls(parsed, CallKind::Import)
}

fn literal_calls(parsed: &ParsedSource, kind: CallKind) -> Vec<String> {
  let mut finder = CallFinder {
    kind,
    found: Vec::new(),
  };
  match parsed.program_ref() {
    ProgramRef::Module(module) => module.visit_with(&mut finder),
    ProgramRef::Script(script) => script.visit_with(&mut finder),
  }
  finder.found
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
  Require,
  Import,
}

struct CallFinder {
  kind: CallKind,
  found: Vec<String>,
}

impl Visit for CallFinder {
  fn visit_call_expr(&mut self, call: &deno_ast::swc::ast::CallExpr) {
    let matches = match (&call.callee, self.kind) {
      (Callee::Import(_), CallKind::Import) => true,
      (Callee::Expr(callee), CallKind::Require) => {
        matches!(&**callee, Expr::Ident(ident) if &*ident.sym == "require")
      }
      _ => false,
    };
    if matches
      && let Some(first) = call.args.first()
      && let Expr::Lit(Lit::Str(literal)) = &*first.expr
    {
      let name = literal.value.to_string_lossy().into_owned();
      if !self.found.contains(&name) {
        self.found.push(name);
      }
    }
    call.visit_children_with(self);
  }
}
