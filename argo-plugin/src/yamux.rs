//! yamux, server role (spec 50 §3.6): the host opens every stream, we accept them.
//!
//! Written here rather than taken from the `yamux` crate (paritytech, 0.14): that crate
//! acknowledges an inbound stream only with the first frame the application sends on it
//! ("stream is acknowledged on first use"), so the stdout/stderr streams the plugin never writes
//! would stay unacknowledged and a yamux v0.1.2 host (Argo's) closes the whole session after
//! 75 s. It is also built on `futures` I/O traits and its own window tuning. The protocol is
//! small; here every inbound stream is ACKed at once, pings are answered ahead of data, the
//! 256 KiB send window is respected and receive credit is re-granted as data is consumed.
//!
//! Each accepted stream is a [`YamuxStream`] (tokio `AsyncRead + AsyncWrite`), backed by an
//! in-memory duplex pipe and two pump tasks that translate between the pipe and frames.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, ReadHalf, WriteHalf,
};
use tokio::sync::{Notify, mpsc, watch};

/// Initial per-stream window, both directions (yamux default).
pub const INITIAL_WINDOW: u32 = 256 * 1024;
/// We re-grant receive credit once this much was consumed (Go does the same at half a window).
const REGRANT_THRESHOLD: u32 = INITIAL_WINDOW / 2;
/// Largest Data frame we send.
const MAX_OUT_FRAME: usize = 64 * 1024;
/// Buffer of the in-memory pipe between a stream's pumps and its user.
const PIPE_CAPACITY: usize = 64 * 1024;
/// Streams accepted but not yet taken by the application (Go's accept backlog).
const ACCEPT_BACKLOG: usize = 256;

const TYPE_DATA: u8 = 0;
const TYPE_WINDOW_UPDATE: u8 = 1;
const TYPE_PING: u8 = 2;
const TYPE_GO_AWAY: u8 = 3;

const FLAG_SYN: u16 = 0x1;
const FLAG_ACK: u16 = 0x2;
const FLAG_FIN: u16 = 0x4;
const FLAG_RST: u16 = 0x8;

/// Go Away codes.
const GO_AWAY_PROTOCOL_ERROR: u32 = 1;

/// A 12-byte frame header (all fields big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub flags: u16,
    pub stream_id: u32,
    pub length: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[0] = self.version;
        out[1] = self.kind;
        out[2..4].copy_from_slice(&self.flags.to_be_bytes());
        out[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        out[8..12].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; 12]) -> Header {
        let [version, kind, f0, f1, s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
        Header {
            version,
            kind,
            flags: u16::from_be_bytes([f0, f1]),
            stream_id: u32::from_be_bytes([s0, s1, s2, s3]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }

    fn control(kind: u8, flags: u16, stream_id: u32, length: u32) -> Header {
        Header {
            version: 0,
            kind,
            flags,
            stream_id,
            length,
        }
    }
}

#[derive(Debug)]
struct Frame {
    header: Header,
    payload: Vec<u8>,
}

impl Frame {
    fn control(kind: u8, flags: u16, stream_id: u32, length: u32) -> Frame {
        Frame {
            header: Header::control(kind, flags, stream_id, length),
            payload: Vec::new(),
        }
    }
}

/// Send credit of one stream, shared by the reader (grants) and the outbound pump (spends).
#[derive(Debug)]
struct SendWindow {
    credit: Mutex<u32>,
    reset: AtomicBool,
    notify: Notify,
}

#[derive(Debug)]
struct StreamEntry {
    /// Inbound payloads to the stream's pump; dropped on FIN or RST from the host.
    inbound: Option<mpsc::UnboundedSender<Vec<u8>>>,
    send_window: Arc<SendWindow>,
    /// How many more payload bytes the host may send before we grant more.
    recv_window: u32,
    local_closed: bool,
    remote_closed: bool,
}

#[derive(Debug)]
struct Shared {
    streams: Mutex<HashMap<u32, StreamEntry>>,
    /// Frames that must not wait behind data: ACKs, window updates, pings, Go Away.
    control_tx: mpsc::UnboundedSender<Frame>,
    /// Data frames, and the FIN that must follow a stream's data.
    data_tx: mpsc::Sender<Frame>,
}

impl Shared {
    fn streams(&self) -> MutexGuard<'_, HashMap<u32, StreamEntry>> {
        // A poisoned map only means a pump panicked; the map itself is still consistent.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One accepted stream.
#[derive(Debug)]
pub struct YamuxStream {
    id: u32,
    io: DuplexStream,
}

impl YamuxStream {
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl AsyncRead for YamuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for YamuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Streams the host opens, in order of arrival. `next` returns `None` once the session ended
/// (connection closed, Go Away, or a protocol error).
#[derive(Debug)]
pub struct Incoming {
    streams: mpsc::Receiver<YamuxStream>,
    closed: watch::Receiver<Option<SessionEnd>>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The host closed the connection.
    Eof,
    /// The host sent Go Away with this code.
    GoAway(u32),
    /// The host broke the protocol; we sent Go Away (protocol error) and closed.
    ProtocolError(String),
    /// Reading or writing the connection failed.
    Io(String),
}

impl Incoming {
    pub async fn next(&mut self) -> Option<YamuxStream> {
        self.streams.recv().await
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<SessionEnd> {
        self.closed.borrow().clone()
    }

    /// Waits until the session has ended (streams already accepted may still be in use).
    pub async fn closed(&mut self) -> SessionEnd {
        match self.closed.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(SessionEnd::Eof),
            Err(_) => SessionEnd::Eof,
        }
    }
}

/// Runs a yamux server session on `io` (spawns its reader and writer tasks).
pub fn server<T>(io: T) -> Incoming
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(io);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (data_tx, data_rx) = mpsc::channel(64);
    let (accept_tx, accept_rx) = mpsc::channel(ACCEPT_BACKLOG);
    let (closed_tx, closed_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        streams: Mutex::new(HashMap::new()),
        control_tx,
        data_tx,
    });
    let closed_tx = Arc::new(closed_tx);
    tokio::spawn(write_loop(
        write_half,
        control_rx,
        data_rx,
        Arc::clone(&closed_tx),
    ));
    tokio::spawn(read_loop(read_half, shared, accept_tx, closed_tx));
    Incoming {
        streams: accept_rx,
        closed: closed_rx,
    }
}

async fn write_loop<W: AsyncWrite>(
    out: WriteHalf<W>,
    mut control_rx: mpsc::UnboundedReceiver<Frame>,
    mut data_rx: mpsc::Receiver<Frame>,
    closed: Arc<watch::Sender<Option<SessionEnd>>>,
) {
    let mut out = tokio::io::BufWriter::new(out);
    let mut closed_rx = closed.subscribe();
    loop {
        let frame = tokio::select! {
            biased;
            _ = closed_rx.wait_for(Option::is_some) => break,
            Some(frame) = control_rx.recv() => frame,
            Some(frame) = data_rx.recv() => frame,
            else => break,
        };
        let mut result = out.write_all(&frame.header.encode()).await;
        if result.is_ok() && !frame.payload.is_empty() {
            result = out.write_all(&frame.payload).await;
        }
        // Flush when nothing else is queued, so bursts go out in one write.
        if result.is_ok() && control_rx.is_empty() && data_rx.is_empty() {
            result = out.flush().await;
        }
        if let Err(e) = result {
            closed.send_if_modified(|end| set_end(end, SessionEnd::Io(e.to_string())));
            break;
        }
        if frame.header.kind == TYPE_GO_AWAY {
            break;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}

fn set_end(end: &mut Option<SessionEnd>, reason: SessionEnd) -> bool {
    if end.is_some() {
        return false;
    }
    *end = Some(reason);
    true
}

async fn read_loop<R: AsyncRead>(
    input: ReadHalf<R>,
    shared: Arc<Shared>,
    accept_tx: mpsc::Sender<YamuxStream>,
    closed: Arc<watch::Sender<Option<SessionEnd>>>,
) {
    let mut input = tokio::io::BufReader::new(input);
    let reason = loop {
        let mut raw = [0u8; 12];
        match input.read_exact(&mut raw).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break SessionEnd::Eof,
            Err(e) => break SessionEnd::Io(e.to_string()),
        }
        let header = Header::decode(&raw);
        match handle_frame(&mut input, &shared, &accept_tx, header).await {
            Ok(None) => {}
            Ok(Some(end)) => break end,
            Err(FrameError::Protocol(message)) => {
                tracing::warn!(%message, "yamux protocol error, closing the session");
                let _ = shared.control_tx.send(Frame::control(
                    TYPE_GO_AWAY,
                    0,
                    0,
                    GO_AWAY_PROTOCOL_ERROR,
                ));
                break SessionEnd::ProtocolError(message);
            }
            Err(FrameError::Io(e)) => break SessionEnd::Io(e.to_string()),
        }
    };
    tracing::debug!(?reason, "yamux session ended");
    // End every stream: readers see EOF, writers stop waiting for credit.
    let entries: Vec<StreamEntry> = shared.streams().drain().map(|(_, e)| e).collect();
    for entry in entries {
        entry.send_window.reset.store(true, Ordering::SeqCst);
        entry.send_window.notify.notify_one();
    }
    // Give a queued Go Away a moment to leave before the writer is told to stop.
    if matches!(reason, SessionEnd::ProtocolError(_)) {
        tokio::task::yield_now().await;
    }
    closed.send_if_modified(|end| set_end(end, reason));
}

enum FrameError {
    Protocol(String),
    Io(std::io::Error),
}

/// Handles one frame; `Ok(Some(_))` ends the session.
async fn handle_frame<R: AsyncRead + Unpin>(
    input: &mut R,
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<YamuxStream>,
    header: Header,
) -> Result<Option<SessionEnd>, FrameError> {
    if header.version != 0 {
        return Err(FrameError::Protocol(format!(
            "unsupported version {}",
            header.version
        )));
    }
    match header.kind {
        TYPE_DATA | TYPE_WINDOW_UPDATE => {
            stream_frame(input, shared, accept_tx, header).await?;
            Ok(None)
        }
        TYPE_PING => {
            if header.flags & FLAG_SYN != 0 {
                // Answer at once, ahead of queued data: the host allows 10 s.
                let _ =
                    shared
                        .control_tx
                        .send(Frame::control(TYPE_PING, FLAG_ACK, 0, header.length));
            }
            Ok(None)
        }
        TYPE_GO_AWAY => Ok(Some(SessionEnd::GoAway(header.length))),
        other => Err(FrameError::Protocol(format!("unknown frame type {other}"))),
    }
}

async fn stream_frame<R: AsyncRead + Unpin>(
    input: &mut R,
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<YamuxStream>,
    header: Header,
) -> Result<(), FrameError> {
    let id = header.stream_id;
    if header.flags & FLAG_SYN != 0 {
        open_stream(shared, accept_tx, id)?;
    }
    if header.kind == TYPE_DATA && header.length > 0 {
        // Check the window before reading, so a lying length cannot make us buffer it.
        let known = {
            let mut streams = shared.streams();
            match streams.get_mut(&id) {
                Some(entry) => {
                    if header.length > entry.recv_window {
                        return Err(FrameError::Protocol(format!(
                            "stream {id}: {} bytes exceed the receive window of {}",
                            header.length, entry.recv_window
                        )));
                    }
                    entry.recv_window -= header.length;
                    true
                }
                None => false,
            }
        };
        if known {
            let mut payload = vec![0u8; header.length as usize];
            input
                .read_exact(&mut payload)
                .await
                .map_err(FrameError::Io)?;
            let streams = shared.streams();
            if let Some(inbound) = streams.get(&id).and_then(|e| e.inbound.as_ref()) {
                // A closed receiver means the stream's user is gone; the data is dropped.
                let _ = inbound.send(payload);
            }
        } else {
            // Data for a stream we do not know (closed, reset): drain it.
            let mut sink = tokio::io::sink();
            let copied = tokio::io::copy(&mut input.take(u64::from(header.length)), &mut sink)
                .await
                .map_err(FrameError::Io)?;
            if copied != u64::from(header.length) {
                return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
    let mut streams = shared.streams();
    let Some(entry) = streams.get_mut(&id) else {
        return Ok(());
    };
    if header.kind == TYPE_WINDOW_UPDATE && header.length > 0 {
        let mut credit = entry
            .send_window
            .credit
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *credit = credit.saturating_add(header.length);
        drop(credit);
        entry.send_window.notify.notify_one();
    }
    if header.flags & FLAG_RST != 0 {
        entry.inbound = None;
        entry.send_window.reset.store(true, Ordering::SeqCst);
        entry.send_window.notify.notify_one();
        streams.remove(&id);
    } else if header.flags & FLAG_FIN != 0 {
        entry.inbound = None;
        entry.remote_closed = true;
        if entry.local_closed {
            streams.remove(&id);
        }
    }
    Ok(())
}

/// Accepts a stream the host opened: ACK at once, start its pumps, hand it to the user.
fn open_stream(
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<YamuxStream>,
    id: u32,
) -> Result<(), FrameError> {
    if id == 0 || id.is_multiple_of(2) {
        return Err(FrameError::Protocol(format!(
            "host opened stream {id}: client streams are odd"
        )));
    }
    let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
    let send_window = Arc::new(SendWindow {
        credit: Mutex::new(INITIAL_WINDOW),
        reset: AtomicBool::new(false),
        notify: Notify::new(),
    });
    {
        let mut streams = shared.streams();
        if streams.contains_key(&id) {
            return Err(FrameError::Protocol(format!(
                "duplicate SYN for stream {id}"
            )));
        }
        streams.insert(
            id,
            StreamEntry {
                inbound: Some(inbound_tx),
                send_window: Arc::clone(&send_window),
                recv_window: INITIAL_WINDOW,
                local_closed: false,
                remote_closed: false,
            },
        );
    }
    let (user_side, pump_side) = tokio::io::duplex(PIPE_CAPACITY);
    let stream = YamuxStream { id, io: user_side };
    if accept_tx.try_send(stream).is_err() {
        // Backlog full or nobody accepting: refuse the stream as Go does.
        shared.streams().remove(&id);
        let _ = shared
            .control_tx
            .send(Frame::control(TYPE_WINDOW_UPDATE, FLAG_RST, id, 0));
        return Ok(());
    }
    // ACK immediately, even if the stream is never written to (the 75 s rule).
    let _ = shared
        .control_tx
        .send(Frame::control(TYPE_WINDOW_UPDATE, FLAG_ACK, id, 0));
    let (pump_read, pump_write) = tokio::io::split(pump_side);
    tokio::spawn(inbound_pump(Arc::clone(shared), id, inbound_rx, pump_write));
    tokio::spawn(outbound_pump(
        Arc::clone(shared),
        id,
        send_window,
        pump_read,
    ));
    Ok(())
}

/// Moves host data into the pipe and grants credit as it is taken.
async fn inbound_pump(
    shared: Arc<Shared>,
    id: u32,
    mut inbound: mpsc::UnboundedReceiver<Vec<u8>>,
    mut pipe: WriteHalf<DuplexStream>,
) {
    let mut consumed: u32 = 0;
    let mut user_gone = false;
    while let Some(chunk) = inbound.recv().await {
        if !user_gone && pipe.write_all(&chunk).await.is_err() {
            // The user dropped the stream; keep granting so the host is never stuck.
            user_gone = true;
        }
        consumed = consumed.saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        if consumed >= REGRANT_THRESHOLD || (inbound.is_empty() && consumed > 0 && user_gone) {
            grant(&shared, id, consumed);
            consumed = 0;
        }
    }
    let _ = pipe.shutdown().await;
}

fn grant(shared: &Shared, id: u32, delta: u32) {
    let mut streams = shared.streams();
    let Some(entry) = streams.get_mut(&id) else {
        return;
    };
    entry.recv_window = entry.recv_window.saturating_add(delta);
    drop(streams);
    let _ = shared
        .control_tx
        .send(Frame::control(TYPE_WINDOW_UPDATE, 0, id, delta));
}

/// Moves what the user writes into Data frames within the send window; FIN at the end.
async fn outbound_pump(
    shared: Arc<Shared>,
    id: u32,
    window: Arc<SendWindow>,
    mut pipe: ReadHalf<DuplexStream>,
) {
    let mut buf = vec![0u8; MAX_OUT_FRAME];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut sent = 0;
        while sent < n {
            let Some(take) = wait_for_credit(&window, n - sent).await else {
                return; // reset or session over
            };
            let payload = buf.get(sent..sent + take).unwrap_or_default().to_vec();
            let frame = Frame {
                header: Header::control(TYPE_DATA, 0, id, take as u32),
                payload,
            };
            if shared.data_tx.send(frame).await.is_err() {
                return;
            }
            sent += take;
        }
    }
    if window.reset.load(Ordering::SeqCst) {
        return;
    }
    // Half-close on the data channel, so the FIN cannot overtake our last data.
    let _ = shared
        .data_tx
        .send(Frame::control(TYPE_WINDOW_UPDATE, FLAG_FIN, id, 0))
        .await;
    let mut streams = shared.streams();
    if let Some(entry) = streams.get_mut(&id) {
        entry.local_closed = true;
        if entry.remote_closed {
            streams.remove(&id);
        }
    }
}

/// Takes up to `want` bytes of send credit, waiting while the window is empty.
async fn wait_for_credit(window: &SendWindow, want: usize) -> Option<usize> {
    loop {
        if window.reset.load(Ordering::SeqCst) {
            return None;
        }
        {
            let mut credit = window.credit.lock().unwrap_or_else(PoisonError::into_inner);
            if *credit > 0 {
                let take = want.min(*credit as usize);
                *credit -= take as u32;
                return Some(take);
            }
        }
        window.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    async fn send(
        host: &mut DuplexStream,
        kind: u8,
        flags: u16,
        id: u32,
        length: u32,
        data: &[u8],
    ) {
        let header = Header::control(kind, flags, id, length);
        host.write_all(&header.encode()).await.unwrap();
        host.write_all(data).await.unwrap();
    }

    async fn frame(host: &mut DuplexStream) -> (Header, Vec<u8>) {
        let mut raw = [0u8; 12];
        host.read_exact(&mut raw).await.unwrap();
        let header = Header::decode(&raw);
        let mut payload = Vec::new();
        if header.kind == TYPE_DATA {
            payload = vec![0; header.length as usize];
            host.read_exact(&mut payload).await.unwrap();
        }
        (header, payload)
    }

    #[tokio::test]
    async fn acks_streams_at_once_and_answers_pings() {
        let (mut host, plugin) = tokio::io::duplex(1 << 20);
        let mut incoming = server(plugin);
        send(&mut host, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, &[]).await;
        send(&mut host, TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0, &[]).await;
        // Nobody has taken or written to the streams yet: they are ACKed anyway.
        assert_eq!(
            frame(&mut host).await.0,
            Header::control(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0)
        );
        assert_eq!(
            frame(&mut host).await.0,
            Header::control(TYPE_WINDOW_UPDATE, FLAG_ACK, 3, 0)
        );
        send(&mut host, TYPE_PING, FLAG_SYN, 0, 7, &[]).await;
        assert_eq!(
            frame(&mut host).await.0,
            Header::control(TYPE_PING, FLAG_ACK, 0, 7)
        );
        assert_eq!(incoming.next().await.unwrap().id(), 1);
        assert_eq!(incoming.next().await.unwrap().id(), 3);
    }

    #[tokio::test]
    async fn data_flows_both_ways_with_window_updates_and_fin() {
        let (mut host, plugin) = tokio::io::duplex(1 << 20);
        let mut incoming = server(plugin);
        send(&mut host, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, &[]).await;
        assert_eq!(frame(&mut host).await.0.flags, FLAG_ACK);
        let mut stream = incoming.next().await.unwrap();

        // A whole window of data in one frame, then more once credit comes back.
        let big = vec![7u8; INITIAL_WINDOW as usize];
        send(&mut host, TYPE_DATA, 0, 1, INITIAL_WINDOW, &big).await;
        let mut got = vec![0u8; big.len()];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
        let (update, _) = frame(&mut host).await;
        assert_eq!((update.kind, update.stream_id), (TYPE_WINDOW_UPDATE, 1));
        assert!(update.length >= REGRANT_THRESHOLD);

        stream.write_all(b"hello").await.unwrap();
        stream.shutdown().await.unwrap();
        let (data, payload) = frame(&mut host).await;
        assert_eq!(
            (data.kind, data.stream_id, payload.as_slice()),
            (TYPE_DATA, 1, &b"hello"[..])
        );
        assert_eq!(
            frame(&mut host).await.0,
            Header::control(TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0)
        );

        send(&mut host, TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0, &[]).await;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn protocol_errors_end_the_session_with_go_away() {
        type RawFrame = (u8, u16, u32, u32, Vec<u8>);
        let cases: Vec<(&str, Vec<RawFrame>)> = vec![
            (
                "duplicate SYN",
                vec![
                    (TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, vec![]),
                    (TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, vec![]),
                ],
            ),
            (
                "even stream id",
                vec![(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0, vec![])],
            ),
            (
                "data beyond the window",
                vec![
                    (TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, vec![]),
                    (TYPE_DATA, 0, 1, INITIAL_WINDOW + 1, vec![]),
                ],
            ),
            ("unknown frame type", vec![(9, 0, 0, 0, vec![])]),
        ];
        for (what, frames) in cases {
            let (mut host, plugin) = tokio::io::duplex(1 << 20);
            let mut incoming = server(plugin);
            for (kind, flags, id, length, data) in frames {
                send(&mut host, kind, flags, id, length, &data).await;
            }
            loop {
                let (header, _) = frame(&mut host).await;
                if header.kind == TYPE_GO_AWAY {
                    assert_eq!(header.length, GO_AWAY_PROTOCOL_ERROR, "{what}");
                    break;
                }
            }
            assert!(
                matches!(incoming.closed().await, SessionEnd::ProtocolError(_)),
                "{what}"
            );
        }
    }

    #[tokio::test]
    async fn eof_ends_the_session_and_its_streams() {
        let (mut host, plugin) = tokio::io::duplex(1 << 20);
        let mut incoming = server(plugin);
        send(&mut host, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, &[]).await;
        let mut stream = incoming.next().await.unwrap();
        drop(host);
        assert_eq!(incoming.closed().await, SessionEnd::Eof);
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(incoming.next().await.is_none());
    }
}
