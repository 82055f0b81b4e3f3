//! Fault injection: fail the next N matching requests with a status code, answer them with a
//! `409 Conflict`, delay them, or answer the next matching watch with `410 Expired`.

use std::time::Duration;

use crate::error::{Error, GroupResource, reason_for_code};
use crate::requests::{RequestMatch, RequestRecord, Verb};

#[derive(Clone, Debug)]
enum Action {
    Fail(u16),
    Conflict,
    Latency(Duration),
    ExpireWatch,
}

#[derive(Clone, Debug)]
struct Fault {
    when: RequestMatch,
    action: Action,
    /// `None`: until cleared.
    remaining: Option<usize>,
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub error: Option<Error>,
    pub expire_watch: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    faults: Vec<Fault>,
}

impl Faults {
    pub(crate) fn fail(&mut self, when: RequestMatch, times: usize, code: u16) {
        self.faults.push(Fault {
            when,
            action: Action::Fail(code),
            remaining: Some(times),
        });
    }

    pub(crate) fn conflict(&mut self, when: RequestMatch, times: usize) {
        self.faults.push(Fault {
            when,
            action: Action::Conflict,
            remaining: Some(times),
        });
    }

    pub(crate) fn latency(&mut self, when: RequestMatch, delay: Duration) {
        self.faults.push(Fault {
            when,
            action: Action::Latency(delay),
            remaining: None,
        });
    }

    pub(crate) fn expire_watch(&mut self, when: RequestMatch) {
        let when = when.verb(Verb::Watch);
        self.faults.push(Fault {
            when,
            action: Action::ExpireWatch,
            remaining: Some(1),
        });
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }

    /// Consumes the faults that apply to `request` (the first failing one wins).
    pub(crate) fn decide(&mut self, request: &RequestRecord) -> Decision {
        let mut d = Decision::default();
        for f in &mut self.faults {
            if f.remaining == Some(0) || !f.when.matches(request) {
                continue;
            }
            let used = match &f.action {
                Action::Latency(delay) => {
                    d.latency += *delay;
                    true
                }
                Action::Fail(code) if d.error.is_none() && !d.expire_watch => {
                    d.error = Some(Error::Injected {
                        code: *code,
                        message: format!(
                            "injected failure ({code} {}) for {} {}",
                            reason_for_code(*code),
                            request.verb,
                            request.resource_path()
                        ),
                    });
                    true
                }
                Action::Conflict if d.error.is_none() && !d.expire_watch => {
                    d.error = Some(Error::Conflict {
                        resource: GroupResource::new(
                            request.group.as_deref().unwrap_or_default(),
                            request.resource.as_deref().unwrap_or_default(),
                        ),
                        name: request.name.clone().unwrap_or_default(),
                        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                    });
                    true
                }
                Action::ExpireWatch if d.error.is_none() && !d.expire_watch => {
                    d.expire_watch = true;
                    true
                }
                _ => false,
            };
            if used && let Some(n) = f.remaining.as_mut() {
                *n -= 1;
            }
        }
        self.faults.retain(|f| f.remaining != Some(0));
        d
    }
}
