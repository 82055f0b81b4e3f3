//! Builds the routers a Rollout's plugin block configures, in Argo's fixed provider order
//! (Istio, NGINX, ALB; spec 00 §4).

use rollout_router_alb::AlbRouter;
use rollout_router_core::{PluginConfig, Router};
use rollout_router_istio::IstioRouter;
use rollout_router_nginx::NginxRouter;

/// The configured routers, boxed so the controller can keep them per Rollout.
pub fn build(config: &PluginConfig) -> Vec<Box<dyn Router + Send + Sync>> {
    let mut routers: Vec<Box<dyn Router + Send + Sync>> = Vec::new();
    if let Some(istio) = &config.istio {
        routers.push(Box::new(IstioRouter::new(istio.clone())));
    }
    if let Some(nginx) = &config.nginx {
        routers.push(Box::new(NginxRouter::new(nginx.clone())));
    }
    if let Some(alb) = &config.alb {
        routers.push(Box::new(AlbRouter::new(alb.clone())));
    }
    routers
}

/// Borrowed views of boxed routers.
pub fn as_dyn(routers: &[Box<dyn Router + Send + Sync>]) -> Vec<&dyn Router> {
    routers.iter().map(|r| r.as_ref() as &dyn Router).collect()
}
