//! Follows the API server's request log as it grows and finds, per Rollout, when a step was
//! written, the last routing write that followed, and the RolloutTraffic status update that
//! reported the step's weight as applied. Times are the log's (when the server answered), so
//! both ends of a latency come from the same clock and include no client-side overhead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_apiserver::{LogMark, RequestRecord, TestApiServer, Verb};

use super::fixtures::owner_of;

/// Plural resources the routers write.
const ROUTING: [&str; 3] = ["virtualservices", "destinationrules", "ingresses"];

/// One Rollout's step, once routed and reported.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    /// The step's status write (or the phase's start when no step was written).
    pub step_at: Instant,
    /// The last routing write before the report (`None`: nothing had to change).
    pub routed_at: Option<Instant>,
    /// The RolloutTraffic status update reporting the weight as applied.
    pub reported_at: Instant,
}

impl Completion {
    /// Step → last routing write (→ the report when nothing had to be written).
    pub fn routing_latency(&self) -> Duration {
        self.routed_at
            .unwrap_or(self.reported_at)
            .saturating_duration_since(self.step_at)
    }

    pub fn report_latency(&self) -> Duration {
        self.reported_at.saturating_duration_since(self.step_at)
    }
}

pub struct Tracker {
    mark: LogMark,
    next_seq: usize,
    replay: bool,
    /// Rollout name → the weight that completes its step.
    targets: HashMap<String, i32>,
    /// When a phase has no step write (start-up), every step counts from here.
    origin: Instant,
    step_at: HashMap<String, Instant>,
    routed_at: HashMap<String, Instant>,
    pub done: HashMap<String, Completion>,
}

impl Tracker {
    /// Tracks `targets` from now on (`origin`: start of the phase).
    pub fn new(server: &TestApiServer, targets: HashMap<String, i32>, origin: Instant) -> Self {
        let mark = server.mark();
        Self {
            mark,
            next_seq: 0,
            replay: false,
            targets,
            origin,
            step_at: HashMap::new(),
            routed_at: HashMap::new(),
            done: HashMap::new(),
        }
    }

    /// Reads the whole log on the next poll (a phase that began before the tracker).
    pub fn rewind(&mut self) {
        self.replay = true;
    }

    /// Reads the requests logged since the last call.
    pub fn poll(&mut self, server: &TestApiServer) {
        let next_mark = server.mark();
        // Requests logged between `mark()` and `requests_since` come twice: skip by seq.
        let records = if std::mem::take(&mut self.replay) {
            server.requests()
        } else {
            server.requests_since(self.mark)
        };
        self.mark = next_mark;
        for r in records {
            if r.seq < self.next_seq {
                continue;
            }
            self.next_seq = r.seq + 1;
            self.observe(&r);
        }
    }

    fn observe(&mut self, r: &RequestRecord) {
        if !r.verb.is_write() || r.status >= 300 {
            return;
        }
        let (Some(resource), Some(name)) = (r.resource.as_deref(), r.name.as_deref()) else {
            // A create names its object in the body.
            if r.verb == Verb::Create
                && r.resource.as_deref().is_some_and(is_routing)
                && let Some(name) = r
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/metadata/name"))
                    .and_then(Value::as_str)
            {
                self.routed(owner_of(name), r.at);
            }
            return;
        };
        let owner = owner_of(name).to_owned();
        if !self.targets.contains_key(&owner) || self.done.contains_key(&owner) {
            return;
        }
        match (resource, r.subresource.as_deref()) {
            ("rollouts", Some("status")) => {
                self.step_at.insert(owner, r.at);
            }
            ("rollouttraffics", Some("status")) => {
                let status = r.body.as_ref().and_then(reported_status);
                let weight = |key: &str| {
                    status
                        .and_then(|s| s.get(key))
                        .and_then(Value::as_i64)
                        .and_then(|w| i32::try_from(w).ok())
                };
                let target = self.targets.get(&owner).copied();
                if target.is_some()
                    && weight("desiredWeight") == target
                    && weight("appliedWeight") == target
                {
                    let completion = Completion {
                        step_at: self.step_at.get(&owner).copied().unwrap_or(self.origin),
                        routed_at: self.routed_at.get(&owner).copied(),
                        reported_at: r.at,
                    };
                    self.done.insert(owner, completion);
                }
            }
            (resource, None) if is_routing(resource) => self.routed(&owner, r.at),
            _ => {}
        }
    }

    fn routed(&mut self, owner: &str, at: Instant) {
        if self.targets.contains_key(owner) && !self.done.contains_key(owner) {
            self.routed_at.insert(owner.to_owned(), at);
        }
    }

    pub fn all_done(&self) -> bool {
        self.done.len() == self.targets.len()
    }

    pub fn pending(&self) -> Vec<&String> {
        let mut p: Vec<&String> = self
            .targets
            .keys()
            .filter(|k| !self.done.contains_key(*k))
            .collect();
        p.sort();
        p
    }

    /// Waits until every target is done.
    pub async fn wait(&mut self, server: &TestApiServer, within: Duration) -> anyhow::Result<()> {
        let result = server
            .wait_for("every Rollout routed", within, |s| {
                self.poll(s);
                self.all_done()
            })
            .await;
        if result.is_err() {
            let pending = self.pending();
            anyhow::bail!(
                "{} of {} Rollouts not routed within {within:?} (first: {:?})",
                pending.len(),
                self.targets.len(),
                pending.iter().take(5).collect::<Vec<_>>()
            );
        }
        Ok(())
    }
}

fn is_routing(resource: &str) -> bool {
    ROUTING.contains(&resource)
}

/// The status a RolloutTraffic status write sets: the value of its JSON patch `add /status`
/// (or the `status` of a merge patch).
fn reported_status(body: &Value) -> Option<&Value> {
    match body {
        Value::Array(ops) => ops
            .iter()
            .find(|op| op.get("path").and_then(Value::as_str) == Some("/status"))
            .and_then(|op| op.get("value")),
        other => other.get("status"),
    }
}
