//! What a resource kind implements to be driven by the runtime.
//!
//! A reconciler is handed a key (an instance id, a group name…), reads the
//! desired state from the store and the actual state from the world, and
//! takes one step to bring the latter toward the former. It must be
//! idempotent: the runtime may call it again at any time (a resync, a
//! restart after a crash), and it will call it again after an error. It
//! never has to guard against running twice at once for the same key.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

/// What the runtime should do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The world matches the desired state: nothing more until the key is
    /// triggered again (or the next periodic resync).
    Done,
    /// Progress was made but is not finished (a container is starting, a VM
    /// is booting): look again after this long.
    RequeueAfter(Duration),
}

/// Drives one kind of resource toward its desired state, one key at a time.
///
/// Implementations may write `async fn reconcile(&self, key: &Self::Key) ->
/// Result<Action, Self::Error>`; the returned future must be `Send` because
/// every reconcile runs as its own task.
pub trait Reconciler: Send + Sync + 'static {
    /// Names one object of the kind; cheap to clone, used as a map key.
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// Why a reconcile failed; logged with the key, then retried with back-off.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Takes the object named by `key` one step toward its desired state.
    ///
    /// An `Err` (or a panic) is retried with exponential back-off; `Ok`
    /// resets the back-off and schedules what the [`Action`] says.
    fn reconcile(
        &self,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;
}
