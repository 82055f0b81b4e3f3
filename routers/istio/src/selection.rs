//! Which routes of a VirtualService carry the canary/stable split (spec 10 §3): HTTP routes by
//! name or inference, TLS routes by port and SNI hosts, TCP routes by port, and the destination
//! validation of §3.4.

use std::collections::BTreeSet;
use std::fmt;

use rollout_router_core::{IstioVirtualService, ObjectKey, RouterError, TcpRoute, TlsRoute};
use serde_json::Value;

use crate::destination::{DestinationView, Targets};
use crate::json::{array_field, name_of, spec_array, u64_field};

/// A route section of a VirtualService.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Http,
    Tls,
    Tcp,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Http, Section::Tls, Section::Tcp];

    /// The key under `spec`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tls => "tls",
            Self::Tcp => "tcp",
        }
    }
}

/// One weighted route: its section and index in the object as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SelectedRoute {
    pub section: Section,
    pub index: usize,
    /// `http[primary]` for named routes, `tls[0]` otherwise: used in errors and observations.
    pub label: String,
}

impl SelectedRoute {
    fn new(section: Section, index: usize, routes: &[Value]) -> Self {
        let label = match routes.get(index).and_then(name_of) {
            Some(name) => format!("{}[{name}]", section.key()),
            None => format!("{}[{index}]", section.key()),
        };
        Self {
            section,
            index,
            label,
        }
    }
}

impl fmt::Display for SelectedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spec.{}", self.label)
    }
}

/// The routes SetWeight weights in `vs`, validated (§3.4), in section order.
pub(crate) fn weighted_routes(
    key: &ObjectKey,
    vs: &Value,
    config: &IstioVirtualService,
    managed: &[&str],
    targets: &Targets,
) -> Result<Vec<SelectedRoute>, RouterError> {
    let mut selected = Vec::new();
    let mut any_section = false;
    for section in Section::ALL {
        // An empty list is the same as an absent one (Argo's JSON round-trip drops it).
        let Some(routes) = spec_array(vs, section.key()).filter(|r| !r.is_empty()) else {
            continue;
        };
        any_section = true;
        let indexes = match section {
            Section::Http => http_routes(key, routes, &config.routes, managed)?,
            Section::Tls => tls_routes(key, routes, &config.tls_routes)?,
            Section::Tcp => tcp_routes(key, routes, &config.tcp_routes)?,
        };
        for index in indexes {
            let route = SelectedRoute::new(section, index, routes);
            validate_destinations(key, &route, &routes[index], targets)?;
            selected.push(route);
        }
    }
    if !any_section {
        return Err(RouterError::invalid_object(
            key,
            "spec",
            "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService",
        ));
    }
    Ok(selected)
}

/// HTTP routes to weight (§3.1). With `routes` omitted the inferred route is the single HTTP
/// route not listed in `managedRoutes` — Argo's rule ("exactly one route, else the first
/// unnamed one") selects nothing when a named route sits next to managed routes (edge cases
/// 26/27, #4741), so the managed routes are left out of the inference here.
pub(crate) fn http_routes(
    key: &ObjectKey,
    routes: &[Value],
    names: &[String],
    managed: &[&str],
) -> Result<Vec<usize>, RouterError> {
    if names.is_empty() {
        let mut unmanaged = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| !name_of(r).is_some_and(|n| managed.contains(&n)))
            .map(|(i, _)| i);
        return match (unmanaged.next(), unmanaged.next()) {
            (Some(i), None) => Ok(vec![i]),
            _ => Err(RouterError::invalid_object(
                key,
                "spec.http",
                "spec.http[] should be set in VirtualService and it must have exactly one route \
                 when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes",
            )),
        };
    }
    names
        .iter()
        .map(|name| {
            routes
                .iter()
                .position(|r| name_of(r) == Some(name))
                .ok_or_else(|| {
                    RouterError::invalid_object(
                        key,
                        "spec.http",
                        format!("HTTP Route '{name}' is not found in the defined Virtual Service."),
                    )
                })
        })
        .collect()
}

/// The HTTP route whose destinations managed routes copy (§7): the first configured route, or
/// the inferred one; `None` when there is none.
pub(crate) fn primary_http_route(
    routes: &[Value],
    names: &[String],
    managed: &[&str],
) -> Option<usize> {
    match names.first() {
        Some(name) => routes.iter().position(|r| name_of(r) == Some(name)),
        None => {
            let mut unmanaged = routes
                .iter()
                .enumerate()
                .filter(|(_, r)| !name_of(r).is_some_and(|n| managed.contains(&n)))
                .map(|(i, _)| i);
            match (unmanaged.next(), unmanaged.next()) {
                (Some(i), None) => Some(i),
                _ => None,
            }
        }
    }
}

/// Ports of a TLS/TCP route's match blocks (a missing port counts as 0).
fn match_ports(route: &Value) -> BTreeSet<u64> {
    array_field(route, "match")
        .unwrap_or_default()
        .iter()
        .map(|m| u64_field(m, "port").unwrap_or(0))
        .collect()
}

/// The single port a route matches on (0 when it has no match blocks), or `None` when its
/// blocks name several ports (such a route never matches, §3.2).
fn single_port(route: &Value) -> Option<u64> {
    let ports = match_ports(route);
    match ports.len() {
        0 => Some(0),
        1 => ports.first().copied(),
        _ => None,
    }
}

fn tls_matches(route: &Value, wanted: &TlsRoute) -> bool {
    if single_port(route) != Some(wanted.port.map_or(0, |p| p.max(0) as u64)) {
        return false;
    }
    let hosts: Vec<&str> = array_field(route, "match")
        .unwrap_or_default()
        .iter()
        .flat_map(|m| array_field(m, "sniHosts").unwrap_or_default())
        .filter_map(Value::as_str)
        .collect();
    hosts.len() == wanted.sni_hosts.len()
        && hosts
            .iter()
            .all(|h| wanted.sni_hosts.iter().any(|w| w == h))
        && wanted.sni_hosts.iter().all(|w| hosts.contains(&w.as_str()))
}

fn tcp_matches(route: &Value, wanted: &TcpRoute) -> bool {
    single_port(route) == Some(wanted.port.map_or(0, |p| p.max(0) as u64))
}

/// TLS routes to weight (§3.2).
fn tls_routes(
    key: &ObjectKey,
    routes: &[Value],
    wanted: &[TlsRoute],
) -> Result<Vec<usize>, RouterError> {
    by_match(key, Section::Tls, routes, wanted, tls_matches)
}

/// TCP routes to weight (§3.3).
fn tcp_routes(
    key: &ObjectKey,
    routes: &[Value],
    wanted: &[TcpRoute],
) -> Result<Vec<usize>, RouterError> {
    by_match(key, Section::Tcp, routes, wanted, tcp_matches)
}

fn by_match<W>(
    key: &ObjectKey,
    section: Section,
    routes: &[Value],
    wanted: &[W],
    matches: impl Fn(&Value, &W) -> bool,
) -> Result<Vec<usize>, RouterError> {
    let (upper, field) = match section {
        Section::Tls => ("TLS", "tlsRoutes"),
        _ => ("TCP", "tcpRoutes"),
    };
    let path = format!("spec.{}", section.key());
    if wanted.is_empty() {
        if routes.len() > 1 {
            return Err(RouterError::invalid_object(
                key,
                path,
                format!(
                    "spec.{}[] should be set in VirtualService and it must have exactly one \
                     route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.{field}",
                    section.key()
                ),
            ));
        }
        return Ok(vec![0]);
    }
    let mut selected = Vec::new();
    for w in wanted {
        let mut found = false;
        for (i, route) in routes.iter().enumerate() {
            if matches(route, w) {
                found = true;
                if !selected.contains(&i) {
                    selected.push(i);
                }
            }
        }
        if !found {
            return Err(RouterError::invalid_object(
                key,
                path,
                format!("No matching {upper} routes found in the defined Virtual Service."),
            ));
        }
    }
    Ok(selected)
}

/// §3.4: a weighted route must hold the canary and the stable destination.
fn validate_destinations(
    key: &ObjectKey,
    route: &SelectedRoute,
    value: &Value,
    targets: &Targets,
) -> Result<(), RouterError> {
    let destinations: Vec<DestinationView<'_>> = array_field(value, "route")
        .unwrap_or_default()
        .iter()
        .map(DestinationView::of)
        .collect();
    let check = |found: bool, what: &str, name: &str| {
        if found {
            Ok(())
        } else {
            Err(RouterError::invalid_object(
                key,
                format!("{route}.route"),
                format!("{what} '{name}' not found in route"),
            ))
        }
    };
    if targets.subset_mode() {
        let has = |subset: &str| destinations.iter().any(|d| d.subset == subset);
        check(
            has(&targets.canary_subset),
            "Canary DestinationRule subset",
            &targets.canary_subset,
        )?;
        check(
            has(&targets.stable_subset),
            "Stable DestinationRule subset",
            &targets.stable_subset,
        )
    } else {
        let has = |service: &str| {
            !service.is_empty() && destinations.iter().any(|d| d.short_host() == service)
        };
        check(
            has(&targets.canary_service),
            "Canary Service",
            &targets.canary_service,
        )?;
        check(
            has(&targets.stable_service),
            "Stable Service",
            &targets.stable_service,
        )
    }
}
