//! HTTP routing: parses a request as kube-apiserver's `RequestInfoFactory` does (API prefix,
//! group, version, namespace, resource, name, subresource, verb), applies injected faults, logs
//! it, and dispatches to discovery, the registry or a watch.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::sync::Arc;

use futures::StreamExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::discovery;
use crate::error::Error;
use crate::managed::{self, FieldManager};
use crate::object;
use crate::patch::{self, PatchType};
use crate::registry::{DeleteOptions, Deleted, ListOptions, WriteOptions};
use crate::requests::{RequestRecord, Verb};
use crate::resource::ResourceType;
use crate::selector::Selector;
use crate::server::Shared;
use crate::table;
use crate::watch::{self, WatchRequest};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Query parameters, in order (kube-rs starts its queries with `?&`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| !v.is_empty())
    }
}

/// A path under `/api/v1` or `/apis/<group>/<version>`.
#[derive(Debug, Default)]
struct ResourcePath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList { group: String, version: String },
    OpenApiRoot,
    OpenApiGroupVersion { group: String, version: String },
    Resource(ResourcePath),
    NotFound,
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Route {
    let mut parts = rest;
    let mut namespace = None;
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = parts.get(1).map(|s| (*s).to_string());
        if parts.len() > 2 && !matches!(parts.get(2), Some(&"status" | &"finalize")) {
            parts = &parts[2..];
        }
    }
    let s = |i: usize| parts.get(i).map(|s| (*s).to_string());
    if parts.is_empty() || parts.len() > 3 {
        return Route::NotFound;
    }
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        plural: s(0).unwrap_or_default(),
        namespace,
        name: s(1),
        subresource: s(2),
    })
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", v] => Route::ResourceList {
            group: String::new(),
            version: (*v).to_string(),
        },
        ["api", v, rest @ ..] => resource_path("", v, rest),
        ["apis"] => Route::GroupList,
        ["apis", g] => Route::Group((*g).to_string()),
        ["apis", g, v] => Route::ResourceList {
            group: (*g).to_string(),
            version: (*v).to_string(),
        },
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", v] => Route::OpenApiGroupVersion {
            group: String::new(),
            version: (*v).to_string(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiGroupVersion {
            group: (*g).to_string(),
            version: (*v).to_string(),
        },
        _ => Route::NotFound,
    }
}

fn verb(method: &Method, has_name: bool, params: &Params) -> Option<Verb> {
    Some(match (method.as_str(), has_name) {
        ("GET", true) => Verb::Get,
        ("GET", false) if params.flag("watch") => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return None,
    })
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(e: &Error) -> Response<Body> {
    let mut resp = json_response(e.code(), &e.to_status());
    // kube-apiserver asks clients to come back in a second for throttling and "too large
    // resourceVersion"; kube-rs's default retry policy honours it.
    if matches!(e.code(), 429 | 504) {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn text_response(text: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(text.as_bytes().to_vec()));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut rx = rx;
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn header(req: &hyper::http::request::Parts, name: hyper::header::HeaderName) -> &str {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Decodes an object body (JSON, or YAML when the client says so).
fn decode_object(content_type: &str, body: &[u8]) -> Result<Value, Error> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "application/yaml" => {
            let text = std::str::from_utf8(body).map_err(|e| Error::BadRequest(e.to_string()))?;
            serde_saphyr::from_str(text)
                .map_err(|e| Error::BadRequest(format!("error decoding YAML: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => Err(Error::UnsupportedMediaType(
            "application/json, application/yaml".into(),
        )),
        _ => serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("error decoding JSON body: {e}"))),
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let params = Params::parse(&query);
    let content_type = header(&parts, CONTENT_TYPE).to_string();
    let accept = header(&parts, ACCEPT).to_string();
    let user_agent = header(&parts, USER_AGENT).to_string();
    let user = header(&parts, AUTHORIZATION)
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let route = route(&path);

    let (rp, verb) = match &route {
        Route::Resource(rp) => (Some(rp), verb(&parts.method, rp.name.is_some(), &params)),
        _ => (None, (parts.method == Method::GET).then_some(Verb::Get)),
    };
    let body_value = if bytes.is_empty() {
        None
    } else {
        match PatchType::from_content_type(&content_type) {
            Ok(pt) => patch::parse_body(pt, &bytes).ok(),
            Err(_) => decode_object(&content_type, &bytes).ok(),
        }
    };
    let mut record = RequestRecord {
        seq: 0,
        verb: verb.unwrap_or(Verb::Get),
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        group: rp.map(|r| r.group.clone()),
        version: rp.map(|r| r.version.clone()),
        resource: rp.map(|r| r.plural.clone()),
        subresource: rp.and_then(|r| r.subresource.clone()),
        namespace: rp.and_then(|r| r.namespace.clone()),
        name: rp.and_then(|r| r.name.clone()),
        content_type: (!content_type.is_empty()).then(|| content_type.clone()),
        body: body_value,
        status: 0,
        injected: false,
        // Set again when the request is logged.
        at: std::time::Instant::now(),
        user,
    };

    let decision = shared.lock_faults().decide(&record);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(err) = decision.error {
        record.injected = true;
        let response = error_response(&err);
        record.status = response.status().as_u16();
        shared.log_request(record);
        return Ok(response);
    }
    record.injected = decision.expire_watch;
    let call = Call {
        pending: RefCell::new(Some(record)),
        logged: Cell::new(None),
        shared: &shared,
        params: &params,
        content_type: &content_type,
        accept: &accept,
        user_agent: &user_agent,
        body: &bytes,
        expire_watch: decision.expire_watch,
    };
    let response = match (route, verb) {
        (_, None) => error_response(&Error::MethodNotAllowed),
        (Route::Resource(rp), Some(verb)) => call
            .resource(&rp, verb)
            .unwrap_or_else(|e| error_response(&e)),
        (route, Some(_)) => call.non_resource(route),
    };
    let status = response.status().as_u16();
    match (call.logged.get(), call.pending.into_inner()) {
        // A write that changed state was logged when it was made (see `Call::write`).
        (Some(seq), _) => shared.answered(seq, status),
        (None, Some(mut record)) => {
            record.status = status;
            shared.log_request(record);
        }
        (None, None) => {}
    }
    Ok(response)
}

struct Call<'a> {
    /// The request's log record, until a change it makes logs it (then `logged` is its position).
    pending: RefCell<Option<RequestRecord>>,
    logged: Cell<Option<usize>>,
    shared: &'a Arc<Shared>,
    params: &'a Params,
    content_type: &'a str,
    accept: &'a str,
    user_agent: &'a str,
    body: &'a [u8],
    expire_watch: bool,
}

impl Call<'_> {
    /// Makes a change; when it changes anything, the request is logged before any watcher can
    /// see the change, so a client that saw an event through a watch finds the write that caused
    /// it in the log.
    fn write<T>(&self, f: impl FnOnce(&mut crate::registry::State) -> T) -> T {
        self.shared.write_then(f, || {
            if let Some(mut record) = self.pending.borrow_mut().take() {
                // The answer is not built yet: a change that happened succeeded.
                record.status = 200;
                self.logged.set(Some(self.shared.log_early(record)));
            }
        })
    }

    fn non_resource(&self, route: Route) -> Response<Body> {
        let state = self.shared.lock_state();
        let doc = match route {
            Route::Version => Some(discovery::version()),
            Route::Health => return text_response("ok"),
            Route::CoreVersions => Some(discovery::core_versions(&self.shared.address)),
            Route::GroupList => Some(discovery::group_list(&state.resources)),
            Route::Group(g) => discovery::group(&state.resources, &g),
            Route::ResourceList { group, version } => {
                discovery::resource_list(&state.resources, &group, &version)
            }
            Route::OpenApiRoot => Some(discovery::openapi_root(&state.resources)),
            Route::OpenApiGroupVersion { group, version } => {
                discovery::openapi_group_version(&state.resources, &group, &version)
            }
            Route::Resource(_) | Route::NotFound => None,
        };
        match doc {
            Some(doc) => json_response(200, &doc),
            None => error_response(&Error::NoRoute),
        }
    }

    fn list_options(&self) -> Result<ListOptions, Error> {
        let limit = match self.params.get("limit").filter(|s| !s.is_empty()) {
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| Error::BadRequest(format!("invalid limit: {l}")))?,
            ),
            None => None,
        };
        Ok(ListOptions {
            label_selector: self.params.get("labelSelector").map(str::to_string),
            field_selector: self.params.get("fieldSelector").map(str::to_string),
            limit,
            continue_token: self.params.get("continue").map(str::to_string),
            resource_version: self.params.get("resourceVersion").map(str::to_string),
            resource_version_match: self.params.get("resourceVersionMatch").map(str::to_string),
        })
    }

    fn write_options(&self) -> WriteOptions {
        let name = match self.params.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => managed::default_manager(self.user_agent),
        };
        WriteOptions {
            dry_run: self.params.dry_run(),
            keep_status: false,
            manager: FieldManager {
                name,
                force: self.params.flag("force"),
            },
        }
    }

    fn delete_options(&self) -> Result<DeleteOptions, Error> {
        let mut opts: DeleteOptions = if self.body.iter().all(u8::is_ascii_whitespace) {
            DeleteOptions::default()
        } else {
            serde_json::from_slice(self.body)
                .map_err(|e| Error::BadRequest(format!("error decoding DeleteOptions: {e}")))?
        };
        if let Some(p) = self.params.get("propagationPolicy") {
            opts.propagation_policy = Some(p.to_string());
        }
        if self.params.dry_run() {
            opts.dry_run = Some(vec!["All".into()]);
        }
        Ok(opts)
    }

    fn wants_table(&self) -> Option<table::Include> {
        table::wanted(self.accept).then(|| table::Include::parse(self.params.get("includeObject")))
    }

    fn resource(&self, rp: &ResourcePath, verb: Verb) -> Result<Response<Body>, Error> {
        let rt: ResourceType = self
            .shared
            .lock_state()
            .resources
            .lookup(&rp.group, &rp.version, &rp.plural)
            .cloned()
            .ok_or(Error::NoRoute)?;
        let status = match rp.subresource.as_deref() {
            None => false,
            Some("status") if rt.status_subresource => true,
            Some(_) => return Err(Error::NoRoute),
        };
        if status && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch) {
            return Err(Error::MethodNotAllowed);
        }
        let namespace = if rt.namespaced {
            rp.namespace.as_deref()
        } else {
            if rp.namespace.is_some() && rp.plural != "namespaces" {
                return Err(Error::NoRoute);
            }
            None
        };
        if rt.namespaced && namespace.is_none() && !matches!(verb, Verb::List | Verb::Watch) {
            return Err(Error::NoRoute);
        }
        let version = rp.version.as_str();
        let name = rp.name.as_deref().unwrap_or_default();
        let shared = self.shared;
        match verb {
            Verb::Get => {
                let obj = shared.lock_state().get(&rt, version, namespace, name)?;
                Ok(match self.wants_table() {
                    Some(include) => json_response(200, &table::table(&[obj], None, include)),
                    None => json_response(200, &obj),
                })
            }
            Verb::List => {
                let list =
                    shared
                        .lock_state()
                        .list(&rt, version, namespace, &self.list_options()?)?;
                Ok(match self.wants_table() {
                    Some(include) => {
                        let items = list
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        json_response(200, &table::table(&items, list.get("metadata"), include))
                    }
                    None => json_response(200, &list),
                })
            }
            Verb::Watch => {
                let lo = self.list_options()?;
                let selector =
                    Selector::parse(lo.label_selector.as_deref(), lo.field_selector.as_deref())?;
                let send_initial_events = self.params.flag("sendInitialEvents");
                let allow_bookmarks = self.params.flag("allowWatchBookmarks");
                if send_initial_events {
                    if lo.resource_version_match.as_deref() != Some("NotOlderThan") {
                        return Err(Error::Invalid {
                            resource: rt.group_resource(),
                            name: String::new(),
                            message: "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                        });
                    }
                    if !allow_bookmarks {
                        return Err(Error::Invalid {
                            resource: rt.group_resource(),
                            name: String::new(),
                            message: "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true".into(),
                        });
                    }
                }
                let timeout = match self.params.get("timeoutSeconds").filter(|s| !s.is_empty()) {
                    Some(t) => Some(std::time::Duration::from_secs(t.parse().map_err(|_| {
                        Error::BadRequest(format!("invalid timeoutSeconds: {t}"))
                    })?)),
                    None => None,
                };
                let rx = watch::start(
                    shared.clone(),
                    WatchRequest {
                        rt: rt.clone(),
                        version: version.to_string(),
                        namespace: namespace.map(str::to_string),
                        selector,
                        resource_version: lo.resource_version,
                        send_initial_events,
                        allow_bookmarks,
                        timeout,
                        expire: self.expire_watch,
                        table: self.wants_table(),
                    },
                );
                Ok(stream_response(rx))
            }
            Verb::Create => {
                let obj = decode_object(self.content_type, self.body)?;
                let opts = self.write_options();
                let created = self.write(|s| s.create(&rt, version, namespace, obj, &opts))?;
                Ok(json_response(201, &created))
            }
            Verb::Update => {
                let obj = decode_object(self.content_type, self.body)?;
                let opts = self.write_options();
                let updated =
                    self.write(|s| s.update(&rt, version, namespace, name, obj, status, &opts))?;
                Ok(json_response(200, &updated))
            }
            Verb::Patch => {
                let patch_type = PatchType::from_content_type(self.content_type)?;
                if patch_type == PatchType::Apply
                    && self.params.get("fieldManager").is_none_or(str::is_empty)
                {
                    return Err(Error::Invalid {
                        resource: rt.group_resource(),
                        name: name.to_string(),
                        message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                    });
                }
                if patch_type != PatchType::Apply && self.params.get("force").is_some() {
                    return Err(Error::Invalid {
                        resource: rt.group_resource(),
                        name: name.to_string(),
                        message: "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch".into(),
                    });
                }
                let body = patch::parse_body(patch_type, self.body)?;
                let opts = self.write_options();
                let (obj, created) = self.write(|s| {
                    s.patch(
                        &rt, version, namespace, name, patch_type, &body, status, &opts,
                    )
                })?;
                Ok(json_response(if created { 201 } else { 200 }, &obj))
            }
            Verb::Delete => {
                let opts = self.delete_options()?;
                match self.write(|s| s.delete(&rt, version, namespace, name, &opts))? {
                    Deleted::Pending(obj) => Ok(json_response(200, &obj)),
                    Deleted::Gone(obj) => {
                        let mut details = json!({
                            "name": name,
                            "kind": rt.plural,
                            "uid": object::uid(&obj).unwrap_or_default(),
                        });
                        if !rt.group.is_empty() {
                            details["group"] = json!(rt.group);
                        }
                        Ok(json_response(
                            200,
                            &json!({
                                "kind": "Status",
                                "apiVersion": "v1",
                                "metadata": {},
                                "status": "Success",
                                "details": details,
                            }),
                        ))
                    }
                }
            }
            Verb::DeleteCollection => {
                let lo = self.list_options()?;
                let opts = self.delete_options()?;
                let list =
                    self.write(|s| s.delete_collection(&rt, version, namespace, &lo, &opts))?;
                Ok(json_response(200, &list))
            }
        }
    }
}
