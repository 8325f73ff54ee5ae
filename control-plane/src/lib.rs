//! The control plane arrives with its own issue.
