//! The scheduler's one failure: no node can take the request.

use std::fmt;

use nuage_model::{ErrorKind, HasKind};

/// How many nodes one filter dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRejection {
    pub filter: &'static str,
    /// Nodes this filter was the first to reject.
    pub rejected: usize,
    /// A reason in words: a summary over those nodes (e.g. the best
    /// shortfall) or the first node's reason.
    pub reason: String,
}

/// No node passes every filter. Lists, per filter in the order they ran,
/// how many nodes it dropped and why, so the user (or operator) sees what to
/// change: another zone, a smaller instance type, fewer group members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NoValidHost {
    pub per_filter: Vec<FilterRejection>,
    /// Nodes considered.
    pub nodes: usize,
    /// The instance (1-based) that found no node.
    pub instance: u32,
    /// How many instances had to be placed for the launch to succeed.
    pub min_count: u32,
}

impl fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no node fits")?;
        if self.min_count > 1 {
            write!(f, " instance {} of {}", self.instance, self.min_count)?;
            if self.instance > 1 {
                write!(
                    f,
                    " (the {} placed before it were rolled back)",
                    self.instance - 1
                )?;
            }
        }
        f.write_str(": ")?;
        if self.nodes == 0 {
            return f.write_str("no compute node has reported in");
        }
        if self.per_filter.is_empty() {
            // Only reachable if a custom filter's `accepts` and `passes` disagree.
            return f.write_str("a filter refused every node without giving a reason");
        }
        for (i, r) in self.per_filter.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} rejected {}", r.filter, r.rejected)?;
            if i == 0 {
                f.write_str(if r.rejected == 1 { " node" } else { " nodes" })?;
            }
            write!(f, " ({})", r.reason)?;
        }
        Ok(())
    }
}

impl HasKind for NoValidHost {
    /// Not the caller's fault and possibly temporary (capacity frees up, nodes
    /// come back): EC2's InsufficientInstanceCapacity, HTTP 503.
    fn kind(&self) -> ErrorKind {
        ErrorKind::InsufficientCapacity
    }
}
