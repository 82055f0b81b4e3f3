//! The plugin process's life (spec 50 §2–§3): handshake, one connection, one yamux session,
//! streams by order of arrival (control, stdout, stderr, then broker streams), and exit on
//! `Control.Quit`, end of the connection or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::PluginError;
use crate::handshake::{self, PluginListener};
use crate::netrpc;
use crate::service::{BrokerIds, ControlService, PluginService, TrafficRouterHandler};
use crate::yamux::{self, YamuxStream};

/// The host gives up after 60 s without a connection; so do we, to avoid orphans.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);
/// After `Control.Quit`, how long we wait for the host to close the connection (which shows
/// the reply arrived) before exiting anyway. The host SIGKILLs after 2 s.
const QUIT_GRACE: Duration = Duration::from_secs(1);

/// Runs the plugin until the host lets it go. Checks the magic cookie first: without it the
/// caller should print the error to stderr and exit with status 1 (spec 50 §2.2).
pub async fn serve(handler: Arc<dyn TrafficRouterHandler>) -> Result<(), PluginError> {
    handshake::check_cookie()?;
    handshake::check_protocol_versions();
    let listener = PluginListener::bind()?;
    serve_on(listener, handler).await
}

/// [`serve`] on an already bound listener (tests bind their own).
pub async fn serve_on(
    listener: PluginListener,
    handler: Arc<dyn TrafficRouterHandler>,
) -> Result<(), PluginError> {
    // Go plugins ignore SIGINT: a terminal's Ctrl-C reaches the whole process group and the
    // host shuts plugins down itself. Holding the stream keeps the default action disabled.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| PluginError::Signal { source })?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| PluginError::Signal { source })?;

    handshake::announce(&listener.handshake_line())?;
    tracing::debug!(socket = %listener.path().display(), "waiting for the host");
    let connection = tokio::select! {
        accepted = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()) => match accepted {
            Ok(connection) => connection?,
            Err(_) => return Err(PluginError::NoConnection),
        },
        _ = terminate.recv() => return Ok(()),
    };
    // One connection for the life of the process: nobody else may connect.
    listener.remove_file();

    let mut incoming = yamux::server(connection);
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let brokers = Arc::new(BrokerIds::default());
    let control: Arc<dyn netrpc::RpcDispatch> = Arc::new(ControlService::new(Arc::clone(&brokers)));
    let plugin: Arc<dyn netrpc::RpcDispatch> = Arc::new(PluginService::new(handler));
    let mut arrived = 0u32;
    loop {
        tokio::select! {
            stream = incoming.next() => {
                let Some(stream) = stream else { break };
                arrived += 1;
                match arrived {
                    1 => spawn_rpc("control", stream, Arc::clone(&control), quit_tx.clone()),
                    // stdout and stderr: Argo discards them and we log to fd 2 instead; keep
                    // them open and drained.
                    2 | 3 => { tokio::spawn(drain(stream)); }
                    _ => {
                        tokio::spawn(broker_stream(
                            stream,
                            Arc::clone(&brokers),
                            Arc::clone(&plugin),
                            quit_tx.clone(),
                        ));
                    }
                }
            }
            _ = quit_rx.wait_for(|quit| *quit) => {
                // The reply is written; let it reach the host, which then closes the session.
                let _ = tokio::time::timeout(QUIT_GRACE, incoming.closed()).await;
                break;
            }
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = interrupt.recv() => {
                tracing::debug!("ignoring SIGINT, as go-plugin plugins do");
            }
        }
    }
    if let Some(reason) = incoming.end_reason() {
        tracing::info!(?reason, "connection to the Argo Rollouts controller ended");
    }
    Ok(())
}

fn spawn_rpc(
    what: &'static str,
    stream: YamuxStream,
    dispatch: Arc<dyn netrpc::RpcDispatch>,
    quit: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        let id = stream.id();
        if let Err(e) = netrpc::serve_stream(stream, dispatch, quit).await {
            tracing::warn!(stream = id, what, error = %e, "rpc stream failed");
        }
    });
}

async fn drain(mut stream: YamuxStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// MuxBroker tagging (spec 50 §3.3): the host writes the dispensed id as 4 bytes little-endian
/// and waits for the echo; then the stream carries the `Plugin` service.
async fn broker_stream(
    mut stream: YamuxStream,
    brokers: Arc<BrokerIds>,
    plugin: Arc<dyn netrpc::RpcDispatch>,
    quit: watch::Sender<bool>,
) {
    let mut id = [0u8; 4];
    if stream.read_exact(&mut id).await.is_err() {
        return;
    }
    let broker_id = u32::from_le_bytes(id);
    if !brokers.claim(broker_id) {
        tracing::warn!(
            broker_id,
            "stream for an id we did not dispense; closing it"
        );
        let _ = stream.shutdown().await;
        return;
    }
    if stream.write_all(&id).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    spawn_rpc("plugin", stream, plugin, quit);
}
