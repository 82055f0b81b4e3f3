//! rollout-router as an Argo Rollouts traffic-router plugin (spec 50): the HashiCorp go-plugin
//! handshake, a yamux server, Go's net/rpc framing and a gob codec, serving the `Plugin.*`
//! methods Argo calls. The controller stays the only writer of routing objects: the default
//! handler ([`AcceptAll`]) accepts every write call without writing and answers `VerifyWeight`
//! from what the controller reports as applied ([`WeightStatusSource`]).

pub mod go_json;
pub mod gob;
pub mod handshake;
pub mod netrpc;
pub mod rpc_types;
pub mod server;
pub mod service;
pub mod status_file;
pub mod yamux;

use std::path::PathBuf;

pub use server::serve;
pub use service::{
    AcceptAll, AppliedWeights, RouterWeights, TrafficRouterHandler, WeightStatusSource,
};

/// Why the plugin could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Started by hand rather than by Argo: print this, exit with status 1.
    #[error("{}", handshake::NOT_A_PLUGIN_MESSAGE)]
    NotLaunchedByArgo,
    #[error("socket path {0} is longer than a Unix socket allows")]
    SocketPathTooLong(PathBuf),
    #[error("cannot listen on {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("accepting the host's connection failed")]
    Accept {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the handshake line to stdout")]
    Stdout {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers")]
    Signal {
        #[source]
        source: std::io::Error,
    },
    #[error("the host did not connect within {:?}", server::ACCEPT_TIMEOUT)]
    NoConnection,
}
