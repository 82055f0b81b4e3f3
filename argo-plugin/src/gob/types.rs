//! Gob's data model: the generic value tree, the wire type definitions a stream carries, and the
//! type descriptions our encoder emits definitions for.

use std::sync::Arc;

/// A gob type id. Negative ids only appear on the wire, as "definition of -id" markers.
pub type TypeId = i64;

/// Predefined type ids (Go `encoding/gob` `type.go`): fixed by the format.
pub mod ids {
    use super::TypeId;
    pub const BOOL: TypeId = 1;
    pub const INT: TypeId = 2;
    pub const UINT: TypeId = 3;
    pub const FLOAT: TypeId = 4;
    pub const BYTES: TypeId = 5;
    pub const STRING: TypeId = 6;
    pub const COMPLEX: TypeId = 7;
    pub const INTERFACE: TypeId = 8;
    /// Ids below this are reserved for the format itself; a user type must not be defined there.
    pub const FIRST_USER: TypeId = 64;
}

/// Which external marshaller produced an opaque gob value (`GobEncoderT` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncoderKind {
    GobEncoder,
    BinaryMarshaler,
    TextMarshaler,
}

/// One decoded gob value. Structs keep only the fields that travelled (gob omits zero fields),
/// in wire order, named as in the sender's definition (Go field names).
#[derive(Debug, Clone, PartialEq)]
pub enum GobValue {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Complex(f64, f64),
    Bytes(Vec<u8>),
    String(String),
    Struct(GobStruct),
    Slice(Vec<GobValue>),
    Array(Vec<GobValue>),
    Map(Vec<(GobValue, GobValue)>),
    /// `None` is the nil interface; otherwise the registered name and the concrete value.
    Interface(Option<Box<(String, GobValue)>>),
    /// A `GobEncoder`/`BinaryMarshaler` value: the definition's name and the opaque bytes.
    Encoded {
        type_name: Arc<str>,
        kind: EncoderKind,
        bytes: Vec<u8>,
    },
}

/// A struct value: the definition's type name and the transmitted fields.
#[derive(Debug, Clone, PartialEq)]
pub struct GobStruct {
    pub type_name: Arc<str>,
    pub fields: Vec<(Arc<str>, GobValue)>,
}

impl GobStruct {
    pub fn new(type_name: &str) -> Self {
        Self {
            type_name: Arc::from(type_name),
            fields: Vec::new(),
        }
    }

    /// Builder used by tests and the reply encoders.
    #[must_use]
    pub fn with(mut self, name: &str, value: GobValue) -> Self {
        self.fields.push((Arc::from(name), value));
        self
    }

    /// The field named `name`, if it travelled.
    pub fn field(&self, name: &str) -> Option<&GobValue> {
        self.fields
            .iter()
            .find(|(field, _)| field.as_ref() == name)
            .map(|(_, value)| value)
    }
}

impl GobValue {
    pub fn as_struct(&self) -> Option<&GobStruct> {
        match self {
            GobValue::Struct(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GobValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integers of either signedness as `i64` (gob keeps the sender's signedness).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            GobValue::Int(n) => Some(*n),
            GobValue::Uint(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            GobValue::Uint(n) => Some(*n),
            GobValue::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }
}

/// A type definition as received (`wireType`): everything is keyed by id and resolved lazily,
/// because Go sends outer definitions before the inner ones they refer to.
#[derive(Debug, Clone, PartialEq)]
pub enum WireType {
    Array {
        name: Arc<str>,
        elem: TypeId,
        len: i64,
    },
    Slice {
        name: Arc<str>,
        elem: TypeId,
    },
    Struct {
        name: Arc<str>,
        fields: Vec<(Arc<str>, TypeId)>,
    },
    Map {
        name: Arc<str>,
        key: TypeId,
        elem: TypeId,
    },
    Encoder {
        name: Arc<str>,
        kind: EncoderKind,
    },
}

/// A type our encoder can describe on the wire. Structural: two equal descriptions share one id
/// per stream. (Recursive types cannot be written down this way; no reply needs one.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeDesc {
    Bool,
    Int,
    Uint,
    Float,
    Bytes,
    String,
    Interface,
    Struct {
        name: String,
        fields: Vec<(String, TypeDesc)>,
    },
    Slice {
        name: String,
        elem: Box<TypeDesc>,
    },
    Array {
        name: String,
        elem: Box<TypeDesc>,
        len: u64,
    },
    Map {
        name: String,
        key: Box<TypeDesc>,
        elem: Box<TypeDesc>,
    },
    Encoded {
        name: String,
        kind: EncoderKind,
    },
}

impl TypeDesc {
    /// A struct description from `(field name, type)` pairs.
    pub fn structure(name: &str, fields: Vec<(&str, TypeDesc)>) -> TypeDesc {
        TypeDesc::Struct {
            name: name.to_owned(),
            fields: fields
                .into_iter()
                .map(|(field, ty)| (field.to_owned(), ty))
                .collect(),
        }
    }

    pub fn slice(name: &str, elem: TypeDesc) -> TypeDesc {
        TypeDesc::Slice {
            name: name.to_owned(),
            elem: Box::new(elem),
        }
    }

    pub fn map(name: &str, key: TypeDesc, elem: TypeDesc) -> TypeDesc {
        TypeDesc::Map {
            name: name.to_owned(),
            key: Box::new(key),
            elem: Box::new(elem),
        }
    }

    /// The predefined id of a basic type, `None` for types that need a definition.
    pub fn builtin_id(&self) -> Option<TypeId> {
        match self {
            TypeDesc::Bool => Some(ids::BOOL),
            TypeDesc::Int => Some(ids::INT),
            TypeDesc::Uint => Some(ids::UINT),
            TypeDesc::Float => Some(ids::FLOAT),
            TypeDesc::Bytes => Some(ids::BYTES),
            TypeDesc::String => Some(ids::STRING),
            TypeDesc::Interface => Some(ids::INTERFACE),
            _ => None,
        }
    }
}
