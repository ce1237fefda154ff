//! The storage contract for webhook state: a cursor that moves only from where its deliverer read it, controls
//! that a delivery under way cannot undo, and a lease that one node holds at a time.

use super::*;
use tidings_protocol::now_ms;
use tidings_server::storage::{HookControl, HookState};

pub(crate) async fn a_hook_cursor_moves_only_from_where_it_was_read(storage: Arc<dyn Storage>) {
    assert_eq!(storage.hook_state("billing").await.expect("read"), None, "a hook that never ran has no state");
    assert!(storage.advance_hook("billing", 0, 3, 0, None).await.expect("advance"));
    assert!(!storage.advance_hook("billing", 0, 4, 0, None).await.expect("advance"), "the cursor is 3, not 0");
    assert!(storage.advance_hook("billing", 3, 5, 2, Some("HTTP 503")).await.expect("advance"));
    let state = storage.hook_state("billing").await.expect("read").expect("a state");
    assert_eq!(state, HookState { cursor: 5, paused: false, failures: 2, last_error: Some("HTTP 503".to_owned()) });

    // A pause holds against a delivery that was under way: the deliverer's advance moves the cursor only.
    storage.control_hook("billing", HookControl::Pause("paused by an operator".to_owned())).await.expect("pause");
    assert!(storage.advance_hook("billing", 5, 6, 0, None).await.expect("advance"));
    let state = storage.hook_state("billing").await.expect("read").expect("a state");
    assert!(state.paused && state.cursor == 6, "{state:?}");
    storage.control_hook("billing", HookControl::Resume).await.expect("resume");
    assert!(!storage.hook_state("billing").await.expect("read").expect("a state").paused);

    // A replay rewinds: a deliverer that read the old cursor is told to read again.
    storage.control_hook("billing", HookControl::ReplayFrom(2)).await.expect("replay");
    assert!(!storage.advance_hook("billing", 6, 7, 0, None).await.expect("advance"));
    let state = storage.hook_state("billing").await.expect("read").expect("a state");
    assert_eq!((state.cursor, state.paused, state.failures), (1, false, 0));
    assert_eq!(storage.hook_state("other").await.expect("read"), None, "hooks are apart");
}

pub(crate) async fn one_node_at_a_time_holds_a_hook(storage: Arc<dyn Storage>) {
    let soon = now_ms() + 60_000;
    assert!(storage.lease_hook("billing", "node-a", soon).await.expect("lease"));
    assert!(!storage.lease_hook("billing", "node-b", soon).await.expect("lease"), "node-a holds it");
    assert!(storage.lease_hook("billing", "node-a", soon + 1).await.expect("lease"), "its holder renews it");
    assert!(storage.lease_hook("shipping", "node-b", soon).await.expect("lease"), "each hook has its own lease");
    // A lease that ran out is free: node-a stopped renewing (it died), and node-b takes over.
    assert!(storage.lease_hook("expiring", "node-a", now_ms().saturating_sub(1)).await.expect("lease"));
    assert!(storage.lease_hook("expiring", "node-b", soon).await.expect("lease"));
    assert!(!storage.lease_hook("expiring", "node-a", soon).await.expect("lease"));
    // The lease leaves the delivery state alone.
    assert!(storage.advance_hook("billing", 0, 9, 0, None).await.expect("advance"));
    assert!(storage.lease_hook("billing", "node-a", soon).await.expect("lease"));
    assert_eq!(storage.hook_state("billing").await.expect("read").expect("a state").cursor, 9);
}
