//! The `test` operations that pin what an array operation assumes, so that a patch planned
//! from a stale copy of the object fails (and the controller re-plans from a fresh read)
//! instead of inserting, removing or rewriting the wrong element.
//!
//! RFC 6902 applies operations in order, so every value pinned here is the element as it
//! stands at that point of the patch, not as it was read.

use rollout_router_core::patch::{PatchBuilder, PointerBuf};
use serde_json::Value;

use crate::json::name_of;

/// Pins the element at `path` (`/spec/http/3`, `/spec/subsets/0`): its `name` when it has one,
/// else its whole value (unnamed routes have no other identity; a shifted array puts another
/// element there).
pub(crate) fn element(ops: &mut PatchBuilder, path: PointerBuf, element: &Value) {
    match name_of(element) {
        Some(name) => {
            ops.test(path.with_trailing_token("name"), Value::from(name));
        }
        None => {
            ops.test(path, element.clone());
        }
    }
}

/// Pins a whole array before an append: RFC 6902 cannot test a length, and an append to an
/// array that already holds the new element would duplicate it.
pub(crate) fn array<'v>(
    ops: &mut PatchBuilder,
    path: PointerBuf,
    items: impl IntoIterator<Item = &'v Value>,
) {
    ops.test(path, Value::Array(items.into_iter().cloned().collect()));
}
