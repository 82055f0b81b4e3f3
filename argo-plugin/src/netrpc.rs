//! Go's `net/rpc` server side over gob (spec 50 §4): request/response headers, per-stream gob
//! codecs, concurrent calls with replies written whole under one lock per stream, and Go's
//! error texts for unknown services and methods.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, watch};

use crate::gob::{self, Decoder, Encoder, GobError, GobStruct, GobValue, TypeDesc};

/// A boxed future, so that services can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Go's `rpc.Request` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub service_method: String,
    pub seq: u64,
}

/// Go's `rpc.Response` header. `error` empty means success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    pub service_method: String,
    pub seq: u64,
    pub error: String,
}

pub fn request_header_type() -> TypeDesc {
    TypeDesc::structure(
        "Request",
        vec![("ServiceMethod", TypeDesc::String), ("Seq", TypeDesc::Uint)],
    )
}

pub fn response_header_type() -> TypeDesc {
    TypeDesc::structure(
        "Response",
        vec![
            ("ServiceMethod", TypeDesc::String),
            ("Seq", TypeDesc::Uint),
            ("Error", TypeDesc::String),
        ],
    )
}

impl RequestHeader {
    /// Reads a header by field name; the struct's name and field order do not matter.
    pub fn from_gob(value: &GobValue) -> Result<Self, RpcError> {
        let header = value
            .as_struct()
            .ok_or_else(|| RpcError::Header(format!("expected a struct, got {value:?}")))?;
        let service_method = match header.field("ServiceMethod") {
            None => String::new(),
            Some(GobValue::String(s)) => s.clone(),
            Some(other) => return Err(RpcError::Header(format!("ServiceMethod is {other:?}"))),
        };
        let seq = match header.field("Seq") {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| RpcError::Header(format!("Seq is {v:?}")))?,
        };
        Ok(Self {
            service_method,
            seq,
        })
    }

    pub fn to_gob(&self) -> GobValue {
        GobValue::Struct(
            GobStruct::new("Request")
                .with(
                    "ServiceMethod",
                    GobValue::String(self.service_method.clone()),
                )
                .with("Seq", GobValue::Uint(self.seq)),
        )
    }
}

impl ResponseHeader {
    pub fn to_gob(&self) -> GobValue {
        GobValue::Struct(
            GobStruct::new("Response")
                .with(
                    "ServiceMethod",
                    GobValue::String(self.service_method.clone()),
                )
                .with("Seq", GobValue::Uint(self.seq))
                .with("Error", GobValue::String(self.error.clone())),
        )
    }

    pub fn from_gob(value: &GobValue) -> Result<Self, RpcError> {
        let request = RequestHeader::from_gob(value)?;
        let error = value
            .as_struct()
            .and_then(|s| s.field("Error"))
            .and_then(GobValue::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            service_method: request.service_method,
            seq: request.seq,
            error,
        })
    }
}

/// A reply body: its gob type and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub ty: TypeDesc,
    pub value: GobValue,
}

impl Reply {
    /// What Go's server sends as the body of an error response (`invalidRequest struct{}`).
    pub fn empty_struct() -> Reply {
        Reply {
            ty: TypeDesc::structure("", vec![]),
            value: GobValue::Struct(GobStruct::new("")),
        }
    }
}

/// What a service call produced.
#[derive(Debug)]
pub struct CallResult {
    /// `Err(text)` becomes the response header's `Error`, with an empty-struct body.
    pub outcome: Result<Reply, String>,
    /// Shut the plugin down once this reply is written (`Control.Quit`).
    pub quit: bool,
}

impl CallResult {
    pub fn reply(reply: Reply) -> Self {
        Self {
            outcome: Ok(reply),
            quit: false,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            outcome: Err(text.into()),
            quit: false,
        }
    }
}

/// The services registered on one net/rpc stream.
pub trait RpcDispatch: Send + Sync + 'static {
    /// Whether `service` is registered here (else: "rpc: can't find service").
    fn has_service(&self, service: &str) -> bool;
    /// Calls `service.method` with the decoded argument.
    fn call<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        body: GobValue,
    ) -> BoxFuture<'a, CallResult>;
}

/// Failures of a net/rpc stream as a whole (calls fail with error replies instead).
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("reading the rpc stream")]
    Read(#[source] std::io::Error),
    #[error("writing the rpc stream")]
    Write(#[source] std::io::Error),
    #[error("gob framing")]
    Framing(#[source] GobError),
    #[error("undecodable rpc header: {0}")]
    Header(String),
    #[error("stream ended inside a message")]
    UnexpectedEof,
}

/// Reads whole gob messages from a byte stream.
pub struct MessageReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner: BufReader::new(inner),
        }
    }

    /// The next message body, `None` at a clean end of stream (between messages).
    pub async fn next_message(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        let mut prefix = [0u8; 9];
        let mut have = 0;
        let (header_len, len) = loop {
            if let Some(bounds) = gob::message_bounds(&prefix[..have]).map_err(RpcError::Framing)? {
                break bounds;
            }
            let Some(slot) = prefix.get_mut(have) else {
                return Err(RpcError::Framing(GobError::InvalidInteger));
            };
            match self.inner.read_u8().await {
                Ok(byte) => *slot = byte,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return if have == 0 {
                        Ok(None)
                    } else {
                        Err(RpcError::UnexpectedEof)
                    };
                }
                Err(e) => return Err(RpcError::Read(e)),
            }
            have += 1;
        };
        let _ = header_len; // equals `have`: the prefix is complete
        // Grow with the data actually received rather than trusting the announced length.
        let mut body = Vec::with_capacity(len.min(64 * 1024));
        let read = (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut body)
            .await
            .map_err(RpcError::Read)?;
        if read != len {
            return Err(RpcError::UnexpectedEof);
        }
        Ok(Some(body))
    }
}

/// The reading half of a net/rpc server stream: messages in, headers and bodies out.
pub struct RequestReader<R> {
    messages: MessageReader<R>,
    decoder: Decoder,
}

/// One request as read: the header, and the body or the reason it could not be decoded.
pub type ReadRequest = (RequestHeader, Result<GobValue, GobError>);

impl<R: AsyncRead + Unpin> RequestReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            messages: MessageReader::new(inner),
            decoder: Decoder::new(),
        }
    }

    /// The next top-level gob value. Outer `Err`: the stream is unusable; inner `Err`: this
    /// value was malformed but the stream is still framed.
    async fn next_value(&mut self) -> Result<Option<Result<GobValue, GobError>>, RpcError> {
        loop {
            let Some(message) = self.messages.next_message().await? else {
                if self.decoder.in_value() {
                    return Err(RpcError::UnexpectedEof);
                }
                return Ok(None);
            };
            match self.decoder.feed(&message) {
                Ok(Some(value)) => return Ok(Some(Ok(value))),
                Ok(None) => {}
                Err(e) => return Ok(Some(Err(e))),
            }
        }
    }

    /// The next request, `None` when the client closed the stream. A header that cannot be
    /// decoded ends the stream, as in Go's server.
    pub async fn next_request(&mut self) -> Result<Option<ReadRequest>, RpcError> {
        let header = match self.next_value().await? {
            None => return Ok(None),
            Some(Ok(value)) => RequestHeader::from_gob(&value)?,
            Some(Err(e)) => return Err(RpcError::Header(e.to_string())),
        };
        // The body is always consumed, even for a method that will be rejected (spec 50 §4.3).
        let body = self.next_value().await?.ok_or(RpcError::UnexpectedEof)?;
        Ok(Some((header, body)))
    }
}

/// The writing half: one gob encoder, replies written whole.
pub struct ResponseWriter<W> {
    encoder: Encoder,
    out: W,
}

impl<W: AsyncWrite + Unpin> ResponseWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            encoder: Encoder::new(),
            out,
        }
    }

    /// Encodes header and body (with any new type definitions) and writes them as one unit.
    pub async fn send(&mut self, header: &ResponseHeader, reply: &Reply) -> Result<(), RpcError> {
        let mut bytes = self
            .encoder
            .encode(&response_header_type(), &header.to_gob())
            .map_err(RpcError::Framing)?;
        let body = match self.encoder.encode(&reply.ty, &reply.value) {
            Ok(body) => body,
            // Our own reply types always encode; if one ever does not, say so to the caller
            // instead of leaving the call unanswered.
            Err(e) => {
                let failed = ResponseHeader {
                    error: e.to_string(),
                    ..header.clone()
                };
                bytes = self
                    .encoder
                    .encode(&response_header_type(), &failed.to_gob())
                    .map_err(RpcError::Framing)?;
                let empty = Reply::empty_struct();
                self.encoder
                    .encode(&empty.ty, &empty.value)
                    .map_err(RpcError::Framing)?
            }
        };
        bytes.extend_from_slice(&body);
        self.out.write_all(&bytes).await.map_err(RpcError::Write)?;
        self.out.flush().await.map_err(RpcError::Write)
    }
}

/// Serves net/rpc on one stream until the client closes it: requests are read in order (the
/// gob type table is sequential) and handled concurrently. Sets `quit` after writing the reply
/// of a call that asked for it.
pub async fn serve_stream<S>(
    stream: S,
    dispatch: Arc<dyn RpcDispatch>,
    quit: watch::Sender<bool>,
) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let mut requests = RequestReader::new(read_half);
    let writer = Arc::new(Mutex::new(ResponseWriter::new(write_half)));
    let quit = Arc::new(quit);
    while let Some((header, body)) = requests.next_request().await? {
        let dispatch = Arc::clone(&dispatch);
        let writer = Arc::clone(&writer);
        let quit = Arc::clone(&quit);
        tokio::spawn(async move {
            let result = dispatch_call(dispatch.as_ref(), &header.service_method, body).await;
            let (reply, error) = match result.outcome {
                Ok(reply) => (reply, String::new()),
                Err(text) => (Reply::empty_struct(), text),
            };
            let response = ResponseHeader {
                service_method: header.service_method,
                seq: header.seq,
                error,
            };
            let sent = writer.lock().await.send(&response, &reply).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not write an rpc reply");
            }
            if result.quit {
                quit.send_replace(true);
            }
        });
    }
    Ok(())
}

/// Go's lookup rules and error texts (spec 50 §4.3).
async fn dispatch_call(
    dispatch: &dyn RpcDispatch,
    service_method: &str,
    body: Result<GobValue, GobError>,
) -> CallResult {
    let Some((service, method)) = service_method.rsplit_once('.') else {
        return CallResult::error(format!(
            "rpc: service/method request ill-formed: {service_method}"
        ));
    };
    if !dispatch.has_service(service) {
        return CallResult::error(format!("rpc: can't find service {service_method}"));
    }
    match body {
        Ok(body) => dispatch.call(service, method, body).await,
        Err(e) => CallResult::error(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_messages_and_reports_truncation() {
        let bytes: &[u8] = &[0x03, 0x0c, 0x00, 0x00, 0x02, 0x01];
        let mut reader = MessageReader::new(bytes);
        assert_eq!(
            reader.next_message().await.unwrap(),
            Some(vec![0x0c, 0x00, 0x00])
        );
        assert!(matches!(
            reader.next_message().await,
            Err(RpcError::UnexpectedEof)
        ));
        let mut empty = MessageReader::new(&[][..]);
        assert_eq!(empty.next_message().await.unwrap(), None);
        let mut huge =
            MessageReader::new(&[0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            huge.next_message().await,
            Err(RpcError::Framing(GobError::MessageTooLarge(_)))
        ));
    }
}
