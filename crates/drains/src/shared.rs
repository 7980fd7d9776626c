//! The seams a cluster plugs into the drain manager (DESIGN.md §3): where
//! definitions are kept ([`Definitions`]) and which node may deliver a
//! drain ([`Ownership`]).
//!
//! On one node definitions are files in the data directory
//! ([`Persist`](crate::persist::Persist)) and every drain is this node's
//! ([`Solo`]). In a cluster the server plugs in a KV bucket that every
//! node watches and leases that let exactly one node at a time deliver a
//! drain; every node still runs a task per drain, which waits for the
//! lease and stops sending the moment it is lost.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::spec::DrainSpec;

/// Where drain definitions and saved formats are kept. Blocking: called
/// from the manager's blocking paths (add, delete, set a format).
pub trait Definitions: Send + Sync {
    /// Every drain, and one message per definition that could not be read.
    fn load_drains(&self) -> (Vec<DrainSpec>, Vec<String>);
    fn save_drain(&self, spec: &DrainSpec) -> std::io::Result<()>;
    fn delete_drain(&self, name: &str) -> std::io::Result<()>;
    fn load_formats(&self) -> (BTreeMap<String, String>, Vec<String>);
    fn save_format(&self, name: &str, template: &str) -> std::io::Result<()>;
    fn delete_format(&self, name: &str) -> std::io::Result<()>;
}

/// The right to deliver a drain, while `lost` is not cancelled; dropping
/// it gives the right up.
pub struct Lease {
    pub lost: CancellationToken,
    /// Released on drop (the cluster's lease renewal).
    pub guard: Box<dyn Send + Sync>,
}

impl Lease {
    /// A lease that is never lost.
    pub fn forever() -> Self {
        Lease {
            lost: CancellationToken::new(),
            guard: Box::new(()),
        }
    }
}

/// Which node delivers each drain.
pub trait Ownership: Send + Sync {
    /// Resolves once this node may deliver `drain`; `None` when `cancel`
    /// fired first.
    fn acquire<'a>(
        &'a self,
        drain: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Option<Lease>>;

    /// The node that delivers `drain`, as far as this node knows; `None`
    /// on a single node.
    fn owner(&self, drain: &str) -> Option<String>;

    /// Whether drains are shared with other nodes (then a new drain's
    /// start is committed before its definition is shared, and a drain
    /// not delivered here shows how far behind it is from its committed
    /// cursor).
    fn shared(&self) -> bool;
}

/// One node: every drain is this node's, at once.
pub struct Solo;

impl Ownership for Solo {
    fn acquire<'a>(
        &'a self,
        _drain: &'a str,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Option<Lease>> {
        Box::pin(async { Some(Lease::forever()) })
    }

    fn owner(&self, _drain: &str) -> Option<String> {
        None
    }

    fn shared(&self) -> bool {
        false
    }
}
