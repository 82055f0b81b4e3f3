//! Gob decoder: one per direction of a stream. Feeds on whole messages, keeps the stream's type
//! table, and produces generic [`GobValue`] trees. Every length read from the wire is checked
//! against the bytes actually present before anything is allocated.

use std::collections::HashMap;
use std::sync::Arc;

use super::GobError;
use super::types::{EncoderKind, GobStruct, GobValue, TypeId, WireType, ids};

/// Deepest value nesting accepted. A Rollout nests about 15 levels; recursion guard only.
pub const MAX_DEPTH: usize = 100;
/// Most type definitions one stream may carry (a Rollout needs about 240).
pub const MAX_TYPES: usize = 10_000;
/// Largest message accepted (spec 50 §6.8: limit defensively; Go's own limit is far higher).
pub const MAX_MESSAGE_LEN: u64 = 64 * 1024 * 1024;

/// Cursor over one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn byte(&mut self) -> Result<u8, GobError> {
        let (&first, rest) = self.buf.split_first().ok_or(GobError::Truncated)?;
        self.buf = rest;
        Ok(first)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], GobError> {
        if n > self.buf.len() {
            return Err(GobError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Gob unsigned integer (§6.1).
    pub(crate) fn uint(&mut self) -> Result<u64, GobError> {
        let first = self.byte()?;
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        // The byte holds the negated count of big-endian bytes that follow.
        let count = usize::from(first.wrapping_neg());
        if count > 8 {
            return Err(GobError::InvalidInteger);
        }
        let bytes = self.take(count)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Gob signed integer: low bit is the sign, complemented when set.
    pub(crate) fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        let magnitude = (u >> 1) as i64;
        Ok(if u & 1 == 1 { !magnitude } else { magnitude })
    }

    /// A length that must fit in what is left of the message.
    fn len(&mut self) -> Result<usize, GobError> {
        let n = self.uint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(GobError::LengthTooLarge(n)),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], GobError> {
        let n = self.len()?;
        self.take(n)
    }

    fn float(&mut self) -> Result<f64, GobError> {
        // Floats travel byte-reversed so that small exponents encode short.
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }
}

/// Splits the gob message at the start of `buf`: `Ok(Some((header_len, body_len)))` when the
/// length prefix is complete, `Ok(None)` when more bytes are needed.
pub fn message_bounds(buf: &[u8]) -> Result<Option<(usize, usize)>, GobError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let header_len = if first < 0x80 {
        1
    } else {
        let count = usize::from(first.wrapping_neg());
        if count > 8 {
            return Err(GobError::InvalidInteger);
        }
        count + 1
    };
    if buf.len() < header_len {
        return Ok(None);
    }
    let len = Reader::new(buf).uint()?;
    if len > MAX_MESSAGE_LEN {
        return Err(GobError::MessageTooLarge(len));
    }
    if len == 0 {
        return Err(GobError::EmptyMessage);
    }
    let len = usize::try_from(len).map_err(|_| GobError::MessageTooLarge(len))?;
    Ok(Some((header_len, len)))
}

/// The decoding side of one gob stream.
#[derive(Debug, Default)]
pub struct Decoder {
    types: HashMap<TypeId, WireType>,
    /// Registered name of a top-level interface value whose definitions span messages.
    pending_interface: Option<String>,
    /// Type definitions arrived since the last top-level value: as in Go, a value must follow
    /// (a stream ending here is truncated, not cleanly ended).
    definitions_pending: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a top-level value is half-read (an interface waiting for more messages).
    pub fn in_value(&self) -> bool {
        self.pending_interface.is_some() || self.definitions_pending
    }

    /// Feeds one whole message (without its length prefix). Returns the top-level value it
    /// completes, or `None` when it only carried type definitions. After an error the decoder
    /// forgets any half-read value but keeps the types it learnt.
    pub fn feed(&mut self, message: &[u8]) -> Result<Option<GobValue>, GobError> {
        let result = self.feed_message(message);
        // Definitions only: a value must follow. A value or an error ends the sequence.
        self.definitions_pending = matches!(result, Ok(None)) && self.pending_interface.is_none();
        result
    }

    fn feed_message(&mut self, message: &[u8]) -> Result<Option<GobValue>, GobError> {
        let mut r = Reader::new(message);
        if let Some(name) = self.pending_interface.take() {
            return self.continue_interface(name, &mut r);
        }
        let id = r.int()?;
        if id < 0 {
            self.define(id.checked_neg().ok_or(GobError::InvalidTypeId(id))?, &mut r)?;
            if r.remaining() > 0 {
                return Err(GobError::TrailingData);
            }
            return Ok(None);
        }
        if id == ids::INTERFACE {
            if r.uint()? != 0 {
                return Err(GobError::NonZeroSingletonDelta);
            }
            let name = r.bytes()?;
            if name.is_empty() {
                return finish(&r, GobValue::Interface(None)).map(Some);
            }
            let name = String::from_utf8_lossy(name).into_owned();
            return self.continue_interface(name, &mut r);
        }
        let value = self.top_level_value(id, &mut r)?;
        finish(&r, value).map(Some)
    }

    /// Decodes a whole byte stream of messages (length-prefixed) into its top-level values.
    /// Used by tests and fuzzing; the server feeds messages as they arrive.
    pub fn decode_stream(&mut self, mut buf: &[u8]) -> Result<Vec<GobValue>, GobError> {
        let mut values = Vec::new();
        while !buf.is_empty() {
            let (header, len) = message_bounds(buf)?.ok_or(GobError::Truncated)?;
            let end = header.checked_add(len).ok_or(GobError::Truncated)?;
            let message = buf.get(header..end).ok_or(GobError::Truncated)?;
            if let Some(value) = self.feed(message)? {
                values.push(value);
            }
            buf = buf.get(end..).unwrap_or_default();
        }
        if self.in_value() {
            return Err(GobError::Truncated);
        }
        Ok(values)
    }

    /// After an interface's name: definitions (possibly in later messages), then the concrete
    /// id, the value's byte count and the value (spec 50 §6.5).
    fn continue_interface(
        &mut self,
        name: String,
        r: &mut Reader<'_>,
    ) -> Result<Option<GobValue>, GobError> {
        loop {
            if r.remaining() == 0 {
                self.pending_interface = Some(name);
                return Ok(None);
            }
            let id = r.int()?;
            if id < 0 {
                self.define(id.checked_neg().ok_or(GobError::InvalidTypeId(id))?, r)?;
                // A delimited value's count may follow a definition inside the same message.
                if r.remaining() > 0 {
                    r.uint()?;
                }
                continue;
            }
            let _byte_count = r.uint()?;
            let value = self.top_level_value(id, r)?;
            let value = GobValue::Interface(Some(Box::new((name, value))));
            return finish(r, value).map(Some);
        }
    }

    /// A value at the top of a message: structs directly, everything else as a "singleton"
    /// preceded by a zero field delta.
    fn top_level_value(&self, id: TypeId, r: &mut Reader<'_>) -> Result<GobValue, GobError> {
        if matches!(self.types.get(&id), Some(WireType::Struct { .. })) {
            return self.value(id, r, 0);
        }
        if r.uint()? != 0 {
            return Err(GobError::NonZeroSingletonDelta);
        }
        self.value(id, r, 0)
    }

    fn value(&self, id: TypeId, r: &mut Reader<'_>, depth: usize) -> Result<GobValue, GobError> {
        if depth > MAX_DEPTH {
            return Err(GobError::TooDeep);
        }
        match id {
            ids::BOOL => return Ok(GobValue::Bool(r.uint()? != 0)),
            ids::INT => return Ok(GobValue::Int(r.int()?)),
            ids::UINT => return Ok(GobValue::Uint(r.uint()?)),
            ids::FLOAT => return Ok(GobValue::Float(r.float()?)),
            ids::COMPLEX => return Ok(GobValue::Complex(r.float()?, r.float()?)),
            ids::BYTES => return Ok(GobValue::Bytes(r.bytes()?.to_vec())),
            ids::STRING => {
                return Ok(GobValue::String(
                    String::from_utf8_lossy(r.bytes()?).into_owned(),
                ));
            }
            ids::INTERFACE => {
                // Only nil interfaces may be nested: the Rollout tree has none (spec 50 §6.5).
                let name = r.bytes()?;
                if name.is_empty() {
                    return Ok(GobValue::Interface(None));
                }
                return Err(GobError::NestedInterface(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            }
            _ => {}
        }
        let wire = self.types.get(&id).ok_or(GobError::UnknownType(id))?;
        match wire {
            WireType::Struct { name, fields } => {
                let mut out = GobStruct {
                    type_name: name.clone(),
                    fields: Vec::new(),
                };
                let mut field: i64 = -1;
                loop {
                    let delta = r.uint()?;
                    if delta == 0 {
                        break;
                    }
                    field = i64::try_from(delta)
                        .ok()
                        .and_then(|d| field.checked_add(d))
                        .ok_or(GobError::FieldOutOfRange(id))?;
                    let (field_name, field_type) = usize::try_from(field)
                        .ok()
                        .and_then(|i| fields.get(i))
                        .ok_or(GobError::FieldOutOfRange(id))?;
                    let value = self.value(*field_type, r, depth + 1)?;
                    out.fields.push((field_name.clone(), value));
                }
                Ok(GobValue::Struct(out))
            }
            WireType::Slice { elem, .. } => {
                let count = r.len()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(*elem, r, depth + 1)?);
                }
                Ok(GobValue::Slice(items))
            }
            WireType::Array { elem, len, .. } => {
                let count = r.len()?;
                if i64::try_from(count).ok() != Some(*len) {
                    return Err(GobError::ArrayLength {
                        expected: *len,
                        got: count as u64,
                    });
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(*elem, r, depth + 1)?);
                }
                Ok(GobValue::Array(items))
            }
            WireType::Map { key, elem, .. } => {
                let count = r.len()?;
                let mut entries = Vec::with_capacity(count / 2);
                for _ in 0..count {
                    let k = self.value(*key, r, depth + 1)?;
                    let v = self.value(*elem, r, depth + 1)?;
                    entries.push((k, v));
                }
                Ok(GobValue::Map(entries))
            }
            WireType::Encoder { name, kind } => Ok(GobValue::Encoded {
                type_name: name.clone(),
                kind: *kind,
                bytes: r.bytes()?.to_vec(),
            }),
        }
    }

    /// Reads a `wireType` value and records it as type `id`.
    fn define(&mut self, id: TypeId, r: &mut Reader<'_>) -> Result<(), GobError> {
        if id < ids::FIRST_USER {
            return Err(GobError::InvalidTypeId(id));
        }
        if self.types.contains_key(&id) {
            return Err(GobError::DuplicateType(id));
        }
        if self.types.len() >= MAX_TYPES {
            return Err(GobError::TooManyTypes);
        }
        let wire = read_wire_type(r)?;
        self.types.insert(id, wire);
        Ok(())
    }
}

fn finish(r: &Reader<'_>, value: GobValue) -> Result<GobValue, GobError> {
    if r.remaining() > 0 {
        return Err(GobError::TrailingData);
    }
    Ok(value)
}

/// Iterates the field numbers of a struct encoding whose layout is fixed by the format
/// (the `wireType` family), calling `visit(field_number, reader)` for each.
fn walk_struct(
    r: &mut Reader<'_>,
    mut visit: impl FnMut(u64, &mut Reader<'_>) -> Result<(), GobError>,
) -> Result<(), GobError> {
    let mut field: u64 = 0; // one past the last field number, so that delta 1 is field 0
    loop {
        let delta = r.uint()?;
        if delta == 0 {
            return Ok(());
        }
        field = field
            .checked_add(delta)
            .ok_or_else(|| GobError::InvalidWireType("field delta overflow".into()))?;
        visit(field - 1, r)?;
    }
}

#[derive(Default)]
struct Common {
    name: String,
}

fn read_common(r: &mut Reader<'_>) -> Result<Common, GobError> {
    let mut common = Common::default();
    walk_struct(r, |field, r| {
        match field {
            0 => common.name = String::from_utf8_lossy(r.bytes()?).into_owned(),
            1 => {
                r.int()?; // CommonType.Id repeats the defined id; the message's id is authoritative
            }
            other => return Err(unknown_field("CommonType", other)),
        }
        Ok(())
    })?;
    Ok(common)
}

fn unknown_field(ty: &str, field: u64) -> GobError {
    GobError::InvalidWireType(format!("{ty} has no field {field}"))
}

fn read_wire_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let mut found: Option<WireType> = None;
    walk_struct(r, |field, r| {
        if found.is_some() {
            return Err(GobError::InvalidWireType(
                "more than one kind in a definition".into(),
            ));
        }
        found = Some(match field {
            0 => read_array_type(r)?,
            1 => read_slice_type(r)?,
            2 => read_struct_type(r)?,
            3 => read_map_type(r)?,
            4..=6 => {
                let kind = match field {
                    4 => EncoderKind::GobEncoder,
                    5 => EncoderKind::BinaryMarshaler,
                    _ => EncoderKind::TextMarshaler,
                };
                let mut common = Common::default();
                walk_struct(r, |f, r| match f {
                    0 => {
                        common = read_common(r)?;
                        Ok(())
                    }
                    other => Err(unknown_field("gobEncoderType", other)),
                })?;
                WireType::Encoder {
                    name: Arc::from(common.name),
                    kind,
                }
            }
            other => return Err(unknown_field("wireType", other)),
        });
        Ok(())
    })?;
    found.ok_or_else(|| GobError::InvalidWireType("empty definition".into()))
}

fn read_array_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let (mut common, mut elem, mut len) = (Common::default(), None, 0);
    walk_struct(r, |f, r| {
        match f {
            0 => common = read_common(r)?,
            1 => elem = Some(r.int()?),
            2 => len = r.int()?,
            other => return Err(unknown_field("arrayType", other)),
        }
        Ok(())
    })?;
    Ok(WireType::Array {
        name: Arc::from(common.name),
        elem: elem.ok_or_else(|| GobError::InvalidWireType("array without Elem".into()))?,
        len,
    })
}

fn read_slice_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let (mut common, mut elem) = (Common::default(), None);
    walk_struct(r, |f, r| {
        match f {
            0 => common = read_common(r)?,
            1 => elem = Some(r.int()?),
            other => return Err(unknown_field("sliceType", other)),
        }
        Ok(())
    })?;
    Ok(WireType::Slice {
        name: Arc::from(common.name),
        elem: elem.ok_or_else(|| GobError::InvalidWireType("slice without Elem".into()))?,
    })
}

fn read_map_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let (mut common, mut key, mut elem) = (Common::default(), None, None);
    walk_struct(r, |f, r| {
        match f {
            0 => common = read_common(r)?,
            1 => key = Some(r.int()?),
            2 => elem = Some(r.int()?),
            other => return Err(unknown_field("mapType", other)),
        }
        Ok(())
    })?;
    let missing = || GobError::InvalidWireType("map without Key or Elem".into());
    Ok(WireType::Map {
        name: Arc::from(common.name),
        key: key.ok_or_else(missing)?,
        elem: elem.ok_or_else(missing)?,
    })
}

fn read_struct_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let mut common = Common::default();
    let mut fields = Vec::new();
    walk_struct(r, |f, r| {
        match f {
            0 => common = read_common(r)?,
            1 => {
                let count = r.len()?;
                fields = Vec::with_capacity(count);
                for _ in 0..count {
                    let (mut name, mut id) = (String::new(), None);
                    walk_struct(r, |f, r| {
                        match f {
                            0 => name = String::from_utf8_lossy(r.bytes()?).into_owned(),
                            1 => id = Some(r.int()?),
                            other => return Err(unknown_field("fieldType", other)),
                        }
                        Ok(())
                    })?;
                    let id = id.ok_or_else(|| {
                        GobError::InvalidWireType(format!("field {name} without type id"))
                    })?;
                    fields.push((Arc::from(name), id));
                }
            }
            other => return Err(unknown_field("structType", other)),
        }
        Ok(())
    })?;
    Ok(WireType::Struct {
        name: Arc::from(common.name),
        fields,
    })
}
