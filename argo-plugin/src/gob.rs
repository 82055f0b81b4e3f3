//! Go's `encoding/gob` format (spec 50 §6): a decoder into generic value trees, the encoder our
//! replies need, and Go's `time.Time` binary encoding used by `metav1.Time`.

pub mod decode;
pub mod encode;
pub mod time;
pub mod types;

pub use decode::{Decoder, MAX_MESSAGE_LEN, message_bounds};
pub use encode::Encoder;
pub use types::{EncoderKind, GobStruct, GobValue, TypeDesc, TypeId, WireType};

/// Why a gob stream could not be decoded or a value encoded. Decoding errors never panic and
/// never allocate more than the bytes received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GobError {
    #[error("gob: message truncated")]
    Truncated,
    #[error("gob: invalid integer encoding")]
    InvalidInteger,
    #[error("gob: length {0} exceeds the bytes left in the message")]
    LengthTooLarge(u64),
    #[error("gob: message of {0} bytes exceeds the limit")]
    MessageTooLarge(u64),
    #[error("gob: empty message")]
    EmptyMessage,
    #[error("gob: invalid type id {0}")]
    InvalidTypeId(i64),
    #[error("gob: type id {0} defined twice")]
    DuplicateType(i64),
    #[error("gob: too many type definitions on one stream")]
    TooManyTypes,
    #[error("gob: unknown type id {0}")]
    UnknownType(i64),
    #[error("gob: invalid type definition: {0}")]
    InvalidWireType(String),
    #[error("gob: field number out of range for type {0}")]
    FieldOutOfRange(i64),
    #[error("gob: array length {got}, type says {expected}")]
    ArrayLength { expected: i64, got: u64 },
    #[error("gob: non-zero delta for a singleton value")]
    NonZeroSingletonDelta,
    #[error("gob: extra data after a value")]
    TrailingData,
    #[error("gob: values nested too deeply")]
    TooDeep,
    #[error("gob: unsupported nested interface value of type {0:?}")]
    NestedInterface(String),
    #[error("gob: cannot encode: {0}")]
    Encode(String),
}
