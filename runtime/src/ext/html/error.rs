//! Errors the HTMLRewriter ops raise into JS.

/// A failure of an HTMLRewriter op. Each variant reaches JS as the class
/// named.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum HtmlRewriterError {
  /// A selector lol_html cannot read.
  #[class(type)]
  #[error("invalid selector {selector:?}: {reason}")]
  Selector {
    /// The selector as given.
    selector: String,
    /// What lol_html objects to.
    reason: String,
  },
  /// The transform is over, or its id is unknown.
  #[class(type)]
  #[error("the HTML rewriter has finished")]
  Finished,
}
