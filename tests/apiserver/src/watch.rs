//! WATCH streams: the initial state (synthetic ADDED events, or `sendInitialEvents` ending with
//! an `initial-events-end` BOOKMARK), replay from a resourceVersion out of the bounded history,
//! selector transitions (an object leaving the selector is DELETED for this watch), BOOKMARK
//! events, `timeoutSeconds`, and `410 Expired` ERROR events for versions the history has lost.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::Error;
use crate::registry::present;
use crate::resource::ResourceType;
use crate::selector::Selector;
use crate::server::Shared;
use crate::store::{Change, ChangeType};
use crate::table;

/// A parsed watch request.
#[derive(Clone, Debug)]
pub(crate) struct WatchRequest {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub selector: Selector,
    pub resource_version: Option<String>,
    pub send_initial_events: bool,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
    /// Answer with a 410 ERROR event at once (fault injection).
    pub expire: bool,
    /// Send objects as one-row Tables (kubectl's printing watch).
    pub table: Option<table::Include>,
}

/// The annotation on the BOOKMARK that ends `sendInitialEvents`.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

fn event_line(type_: &str, object: Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({ "type": type_, "object": object })).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn expired_line(message: String) -> Bytes {
    event_line("ERROR", Error::Expired(message).to_status())
}

struct Watcher {
    req: WatchRequest,
    tx: mpsc::Sender<Bytes>,
    /// Every change up to this version has been looked at.
    last_rv: u64,
}

enum Step {
    Continue,
    Stop,
}

impl Watcher {
    fn in_scope(&self, change: &Change) -> bool {
        change.key.gr == self.req.rt.group_resource()
            && self
                .req
                .namespace
                .as_deref()
                .is_none_or(|ns| change.key.namespace == ns)
    }

    fn out(&self, obj: &Value) -> Value {
        let obj = present(&self.req.rt, &self.req.version, obj);
        match self.req.table {
            Some(include) => table::table(&[obj], None, include),
            None => obj,
        }
    }

    /// The event (if any) this watch sees for a change, with selector transitions.
    fn event_for(&self, change: &Change) -> Option<Bytes> {
        let sel = &self.req.selector;
        let now = sel.matches(&change.object);
        let before = change.prev.as_ref().is_some_and(|p| sel.matches(p));
        let type_ = match change.change {
            ChangeType::Added if now => "ADDED",
            ChangeType::Modified if now && before => "MODIFIED",
            ChangeType::Modified if now => "ADDED",
            ChangeType::Modified if before => "DELETED",
            ChangeType::Deleted if before || now => "DELETED",
            _ => return None,
        };
        Some(event_line(type_, self.out(&change.object)))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
        }
        event_line(
            "BOOKMARK",
            json!({
                "kind": self.req.rt.kind,
                "apiVersion": self.req.rt.api_version(&self.req.version),
                "metadata": metadata,
            }),
        )
    }

    async fn send_all(&self, lines: Vec<Bytes>) -> Step {
        for line in lines {
            if self.tx.send(line).await.is_err() {
                return Step::Stop;
            }
        }
        Step::Continue
    }

    /// Sends the changes after `last_rv`, then a bookmark at the current version if asked.
    async fn deliver(&mut self, shared: &Shared, bookmark: bool) -> Step {
        let (lines, stop) = {
            let state = shared.lock_state();
            if state.resources.get(&self.req.rt.group_resource()).is_none() {
                // The type was unregistered (its CRD deleted): kube-apiserver ends such watches.
                (Vec::new(), true)
            } else {
                match state.store.changes_after(self.last_rv) {
                    Err(Error::Expired(m)) => (vec![expired_line(m)], true),
                    Err(e) => (vec![event_line("ERROR", e.to_status())], true),
                    Ok(changes) => {
                        let mut lines: Vec<Bytes> = changes
                            .iter()
                            .filter(|c| self.in_scope(c))
                            .filter_map(|c| self.event_for(c))
                            .collect();
                        self.last_rv = state.store.rv();
                        if bookmark && self.req.allow_bookmarks {
                            lines.push(self.bookmark(self.last_rv, false));
                        }
                        (lines, false)
                    }
                }
            }
        };
        match self.send_all(lines).await {
            Step::Stop => Step::Stop,
            Step::Continue if stop => Step::Stop,
            Step::Continue => Step::Continue,
        }
    }

    /// The initial events and the version to continue from.
    fn initial(&self, shared: &Shared) -> Result<(Vec<Bytes>, u64), Bytes> {
        let state = shared.lock_state();
        let current = state.store.rv();
        let rv = self
            .req
            .resource_version
            .as_deref()
            .filter(|s| !s.is_empty());
        let snapshot = |state: &crate::registry::State| -> Vec<Bytes> {
            state
                .store
                .list(&self.req.rt.group_resource(), self.req.namespace.as_deref())
                .iter()
                .filter(|(_, o)| self.req.selector.matches(o))
                .map(|(_, o)| event_line("ADDED", self.out(o)))
                .collect()
        };
        if self.req.send_initial_events {
            let mut lines = snapshot(&state);
            lines.push(self.bookmark(current, true));
            return Ok((lines, current));
        }
        match rv {
            None | Some("0") => Ok((snapshot(&state), current)),
            Some(r) => {
                let Ok(r) = r.parse::<u64>() else {
                    return Err(event_line(
                        "ERROR",
                        Error::BadRequest(format!("invalid resource version: {r}")).to_status(),
                    ));
                };
                if r < state.store.compacted() {
                    return Err(expired_line(format!(
                        "too old resource version: {r} ({})",
                        state.store.compacted() + 1
                    )));
                }
                Ok((Vec::new(), r))
            }
        }
    }
}

/// Starts a watch; the receiver yields the newline-delimited JSON events of the response body.
pub(crate) fn start(shared: Arc<Shared>, req: WatchRequest) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(256);
    // Subscribe before reading the state, so no change slips between the two.
    let mut changed = shared.changed.subscribe();
    let mut dropped = shared.drop_watches.subscribe();
    let mut bookmarks = shared.bookmarks.subscribe();
    let guard = shared.watch_opened();
    tokio::spawn(async move {
        let _guard = guard;
        let mut w = Watcher {
            req,
            tx,
            last_rv: 0,
        };
        if w.req.expire {
            let rv = w.req.resource_version.clone().unwrap_or_default();
            let _ = w
                .send_all(vec![expired_line(format!(
                    "too old resource version: {rv}"
                ))])
                .await;
            return;
        }
        match w.initial(&shared) {
            Err(line) => {
                let _ = w.send_all(vec![line]).await;
                return;
            }
            Ok((lines, rv)) => {
                w.last_rv = rv;
                if let Step::Stop = w.send_all(lines).await {
                    return;
                }
            }
        }
        // Changes between `rv` and now (a replay from an older version).
        if let Step::Stop = w.deliver(&shared, false).await {
            return;
        }
        let deadline = w.req.timeout.map(|t| Instant::now() + t);
        let period = shared.options.bookmark_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            let step = tokio::select! {
                r = changed.changed() => match r {
                    Ok(()) => w.deliver(&shared, false).await,
                    Err(_) => Step::Stop,
                },
                _ = dropped.changed() => Step::Stop,
                r = bookmarks.changed() => match r {
                    Ok(()) => w.deliver(&shared, true).await,
                    Err(_) => Step::Stop,
                },
                _ = ticker.tick() => w.deliver(&shared, true).await,
                () = sleep_until_opt(deadline) => Step::Stop,
                () = w.tx.closed() => Step::Stop,
            };
            if let Step::Stop = step {
                return;
            }
        }
    });
    rx
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
