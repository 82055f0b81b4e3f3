//! Gob encoder: one per direction of a stream. Assigns type ids (≥ 65, like Go 1.19), sends each
//! definition once per stream, outer first, and packs values exactly as Go's `encoding/gob` does,
//! including the zero-field omission rules and the top-level interface packing (spec 50 §6.5).

use std::collections::{HashMap, HashSet};

use super::GobError;
use super::types::{EncoderKind, GobStruct, GobValue, TypeDesc, TypeId, ids};

/// First id we hand out; Go 1.19 starts at 65 too, which keeps our bytes comparable.
const FIRST_ID: TypeId = 65;

/// The encoding side of one gob stream.
#[derive(Debug)]
pub struct Encoder {
    ids: HashMap<TypeDesc, TypeId>,
    sent: HashSet<TypeId>,
    next_id: TypeId,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            ids: HashMap::new(),
            sent: HashSet::new(),
            next_id: FIRST_ID,
        }
    }
}

pub(crate) fn put_uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    let bytes = n.to_be_bytes();
    let skip = (n.leading_zeros() / 8) as usize;
    let significant = bytes.get(skip..).unwrap_or_default();
    // The count byte is the negated number of bytes that follow.
    out.push((significant.len() as u8).wrapping_neg());
    out.extend_from_slice(significant);
}

pub(crate) fn put_int(out: &mut Vec<u8>, n: i64) {
    let u = if n < 0 {
        ((!n as u64) << 1) | 1
    } else {
        (n as u64) << 1
    };
    put_uint(out, u);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_float(out: &mut Vec<u8>, f: f64) {
    put_uint(out, f.to_bits().swap_bytes());
}

/// Appends `body` to `out` as one length-prefixed message.
fn put_message(out: &mut Vec<u8>, body: &[u8]) {
    put_uint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Writes struct fields with gob's delta numbering (used for the fixed `wireType` family).
struct FieldWriter<'a> {
    out: &'a mut Vec<u8>,
    last: i64,
}

impl<'a> FieldWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, last: -1 }
    }

    fn field(&mut self, index: i64) -> &mut Vec<u8> {
        put_uint(self.out, (index - self.last) as u64);
        self.last = index;
        self.out
    }

    fn string(&mut self, index: i64, s: &str) {
        if !s.is_empty() {
            put_bytes(self.field(index), s.as_bytes());
        }
    }

    fn int(&mut self, index: i64, n: i64) {
        if n != 0 {
            put_int(self.field(index), n);
        }
    }

    fn end(self) {
        self.out.push(0);
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `id` for `ty` instead of the next free id. Tests use it to reproduce the exact
    /// bytes of a Go process, whose ids are process-wide counters.
    pub fn pin_id(&mut self, ty: &TypeDesc, id: TypeId) {
        self.ids.insert(ty.clone(), id);
        self.next_id = self.next_id.max(id + 1);
    }

    /// Encodes a top-level value of type `ty`: the definitions this stream has not seen, then
    /// the value, as length-prefixed messages.
    pub fn encode(&mut self, ty: &TypeDesc, value: &GobValue) -> Result<Vec<u8>, GobError> {
        if let (TypeDesc::Interface, GobValue::Interface(Some(_))) = (ty, value) {
            return Err(GobError::Encode(
                "a non-nil top-level interface needs encode_interface".into(),
            ));
        }
        self.assign_ids(ty);
        let mut out = Vec::new();
        self.send_type(&mut out, None, ty);
        let mut body = Vec::new();
        put_int(&mut body, self.id_of(ty));
        self.top_level_value(&mut body, ty, value)?;
        put_message(&mut out, &body);
        Ok(out)
    }

    /// Encodes a top-level interface holding `value` of concrete type `ty`, registered as
    /// `name`: the first definition rides in the name's message, as Go packs it.
    pub fn encode_interface(
        &mut self,
        name: &str,
        ty: &TypeDesc,
        value: &GobValue,
    ) -> Result<Vec<u8>, GobError> {
        self.assign_ids(ty);
        let mut out = Vec::new();
        let mut first = Vec::new();
        put_int(&mut first, ids::INTERFACE);
        put_uint(&mut first, 0);
        put_bytes(&mut first, name.as_bytes());
        let mut pending = Some(first);
        self.send_type(&mut out, Some(&mut pending), ty);
        let mut body = pending.unwrap_or_default();
        put_int(&mut body, self.id_of(ty));
        let mut data = Vec::new();
        self.top_level_value(&mut data, ty, value)?;
        put_bytes(&mut body, &data);
        put_message(&mut out, &body);
        Ok(out)
    }

    fn top_level_value(
        &self,
        out: &mut Vec<u8>,
        ty: &TypeDesc,
        value: &GobValue,
    ) -> Result<(), GobError> {
        if !matches!(ty, TypeDesc::Struct { .. }) {
            put_uint(out, 0); // singleton: a zero field delta precedes non-struct values
        }
        self.value(out, ty, value)
    }

    fn id_of(&self, ty: &TypeDesc) -> TypeId {
        ty.builtin_id()
            .or_else(|| self.ids.get(ty).copied())
            .unwrap_or(ids::INTERFACE)
    }

    /// Gives every type in `ty` an id, in the order Go's `newTypeObject` does: a struct before
    /// its fields, a slice, array or map after its element types.
    fn assign_ids(&mut self, ty: &TypeDesc) {
        if ty.builtin_id().is_some() || self.ids.contains_key(ty) {
            return;
        }
        match ty {
            TypeDesc::Struct { fields, .. } => {
                self.fresh_id(ty);
                for (_, field) in fields {
                    self.assign_ids(field);
                }
            }
            TypeDesc::Slice { elem, .. } | TypeDesc::Array { elem, .. } => {
                self.assign_ids(elem);
                self.fresh_id(ty);
            }
            TypeDesc::Map { key, elem, .. } => {
                self.assign_ids(key);
                self.assign_ids(elem);
                self.fresh_id(ty);
            }
            _ => self.fresh_id(ty),
        }
    }

    fn fresh_id(&mut self, ty: &TypeDesc) {
        if !self.ids.contains_key(ty) {
            self.ids.insert(ty.clone(), self.next_id);
            self.next_id += 1;
        }
    }

    /// Sends the definition of `ty` (if not yet sent on this stream), then its inner types.
    /// `inline` holds the start of an interface's first message: the first definition is
    /// appended to it instead of getting a message of its own.
    fn send_type(
        &mut self,
        out: &mut Vec<u8>,
        mut inline: Option<&mut Option<Vec<u8>>>,
        ty: &TypeDesc,
    ) {
        if ty.builtin_id().is_some() {
            return;
        }
        let id = self.id_of(ty);
        if !self.sent.insert(id) {
            return;
        }
        let mut definition = inline
            .as_mut()
            .and_then(|pending| pending.take())
            .unwrap_or_default();
        put_int(&mut definition, -id);
        self.wire_type(&mut definition, ty);
        put_message(out, &definition);
        match ty {
            TypeDesc::Struct { fields, .. } => {
                for (_, field) in fields {
                    self.send_type(out, None, field);
                }
            }
            TypeDesc::Slice { elem, .. } | TypeDesc::Array { elem, .. } => {
                self.send_type(out, None, elem);
            }
            TypeDesc::Map { key, elem, .. } => {
                self.send_type(out, None, key);
                self.send_type(out, None, elem);
            }
            _ => {}
        }
    }

    /// A `wireType` value describing `ty`.
    fn wire_type(&self, out: &mut Vec<u8>, ty: &TypeDesc) {
        let id = self.id_of(ty);
        let common = |out: &mut Vec<u8>, name: &str| {
            let mut w = FieldWriter::new(out);
            w.string(0, name);
            w.int(1, id);
            w.end();
        };
        let mut wire = FieldWriter::new(out);
        match ty {
            TypeDesc::Array { name, elem, len } => {
                let mut w = FieldWriter::new(wire.field(0));
                common(w.field(0), name);
                w.int(1, self.id_of(elem));
                w.int(2, i64::try_from(*len).unwrap_or(i64::MAX));
                w.end();
            }
            TypeDesc::Slice { name, elem } => {
                let mut w = FieldWriter::new(wire.field(1));
                common(w.field(0), name);
                w.int(1, self.id_of(elem));
                w.end();
            }
            TypeDesc::Struct { name, fields } => {
                let mut w = FieldWriter::new(wire.field(2));
                common(w.field(0), name);
                if !fields.is_empty() {
                    let list = w.field(1);
                    put_uint(list, fields.len() as u64);
                    for (field, field_ty) in fields {
                        let mut f = FieldWriter::new(list);
                        f.string(0, field);
                        f.int(1, self.id_of(field_ty));
                        f.end();
                    }
                }
                w.end();
            }
            TypeDesc::Map { name, key, elem } => {
                let mut w = FieldWriter::new(wire.field(3));
                common(w.field(0), name);
                w.int(1, self.id_of(key));
                w.int(2, self.id_of(elem));
                w.end();
            }
            TypeDesc::Encoded { name, kind } => {
                let index = match kind {
                    EncoderKind::GobEncoder => 4,
                    EncoderKind::BinaryMarshaler => 5,
                    EncoderKind::TextMarshaler => 6,
                };
                let mut w = FieldWriter::new(wire.field(index));
                common(w.field(0), name);
                w.end();
            }
            // Basic types have no definition; send_type never gets here with one.
            _ => {}
        }
        wire.end();
    }

    /// The encoding of `value` as type `ty`, without any singleton prefix.
    fn value(&self, out: &mut Vec<u8>, ty: &TypeDesc, value: &GobValue) -> Result<(), GobError> {
        match (ty, value) {
            (TypeDesc::Bool, GobValue::Bool(b)) => put_uint(out, u64::from(*b)),
            (TypeDesc::Int, GobValue::Int(n)) => put_int(out, *n),
            (TypeDesc::Uint, GobValue::Uint(n)) => put_uint(out, *n),
            (TypeDesc::Float, GobValue::Float(f)) => put_float(out, *f),
            (TypeDesc::Bytes, GobValue::Bytes(b)) => put_bytes(out, b),
            (TypeDesc::String, GobValue::String(s)) => put_bytes(out, s.as_bytes()),
            (TypeDesc::Interface, GobValue::Interface(None)) => put_uint(out, 0),
            (TypeDesc::Struct { fields, .. }, GobValue::Struct(s)) => {
                self.structure(out, fields, s)?;
            }
            (TypeDesc::Slice { elem, .. }, GobValue::Slice(items))
            | (TypeDesc::Array { elem, .. }, GobValue::Array(items)) => {
                if let TypeDesc::Array { len, .. } = ty
                    && items.len() as u64 != *len
                {
                    return Err(GobError::Encode(format!(
                        "array of {len} given {} elements",
                        items.len()
                    )));
                }
                put_uint(out, items.len() as u64);
                for item in items {
                    self.value(out, elem, item)?;
                }
            }
            (TypeDesc::Map { key, elem, .. }, GobValue::Map(entries)) => {
                put_uint(out, entries.len() as u64);
                for (k, v) in entries {
                    self.value(out, key, k)?;
                    self.value(out, elem, v)?;
                }
            }
            (TypeDesc::Encoded { .. }, GobValue::Encoded { bytes, .. }) => put_bytes(out, bytes),
            (ty, value) => {
                return Err(GobError::Encode(format!(
                    "value {value:?} does not match type {ty:?}"
                )));
            }
        }
        Ok(())
    }

    fn structure(
        &self,
        out: &mut Vec<u8>,
        fields: &[(String, TypeDesc)],
        value: &GobStruct,
    ) -> Result<(), GobError> {
        for (name, _) in &value.fields {
            if !fields
                .iter()
                .any(|(field, _)| field.as_str() == name.as_ref())
            {
                return Err(GobError::Encode(format!(
                    "no field {name} in the struct type"
                )));
            }
        }
        let mut last: i64 = -1;
        for (index, (name, field_ty)) in fields.iter().enumerate() {
            let Some(field_value) = value.field(name) else {
                continue;
            };
            if is_omitted(field_value) {
                continue;
            }
            let index = index as i64;
            put_uint(out, (index - last) as u64);
            last = index;
            self.value(out, field_ty, field_value)?;
        }
        out.push(0);
        Ok(())
    }
}

/// Go's zero-value omission for struct fields (spec 50 §6.3). Absent fields are nil already;
/// present empty maps, structs, arrays and encoded values are sent.
fn is_omitted(value: &GobValue) -> bool {
    match value {
        GobValue::Bool(b) => !b,
        GobValue::Int(n) => *n == 0,
        GobValue::Uint(n) => *n == 0,
        GobValue::Float(f) => *f == 0.0,
        GobValue::Complex(re, im) => *re == 0.0 && *im == 0.0,
        GobValue::Bytes(b) => b.is_empty(),
        GobValue::String(s) => s.is_empty(),
        GobValue::Slice(items) => items.is_empty(),
        GobValue::Interface(inner) => inner.is_none(),
        GobValue::Struct(_) | GobValue::Array(_) | GobValue::Map(_) | GobValue::Encoded { .. } => {
            false
        }
    }
}
