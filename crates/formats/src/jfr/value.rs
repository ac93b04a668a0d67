//! Values decoded by their declared type: primitives, constant-pool references (kept as keys,
//! resolved later, since a pool may refer to entries that come after it), arrays and inline
//! objects. Skipping a value costs no allocation.

use super::cursor::{Cursor, JfrString};
use super::error::JfrError;
use super::metadata::{ClassDef, FieldDef, Metadata, Primitive};

/// Inline objects nested deeper than this are refused (a type may not contain itself).
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Float(f64),
    String(String),
    /// A key into the string constant pool.
    StringRef(u64),
    /// A key into the constant pool of the field's type.
    Ref(u64),
    Array(Vec<Value>),
    Object(Vec<Value>),
}

impl Value {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Float(v) => Some(*v as i64),
            _ => None,
        }
    }

    pub(crate) fn as_ref_key(&self) -> Option<u64> {
        match self {
            Value::Ref(key) => Some(*key),
            _ => None,
        }
    }
}

/// Decodes values of the types a chunk's metadata declares.
pub(crate) struct Decoder<'m> {
    pub metadata: &'m Metadata,
}

impl<'m> Decoder<'m> {
    pub(crate) fn class(&self, id: u64) -> Result<&'m ClassDef, JfrError> {
        self.metadata
            .classes
            .get(&id)
            .ok_or_else(|| JfrError::corrupt(format!("type id {id} is not declared")))
    }

    /// The fields of an object of type `class`, in declaration order, into `out` (cleared).
    pub(crate) fn object_into(
        &self,
        cursor: &mut Cursor<'_>,
        class: &ClassDef,
        out: &mut Vec<Value>,
    ) -> Result<(), JfrError> {
        out.clear();
        if let Some(primitive) = class.primitive {
            out.push(primitive_value(cursor, primitive)?);
            return Ok(());
        }
        for field in &class.fields {
            out.push(self.field(cursor, field, 0)?);
        }
        Ok(())
    }

    pub(crate) fn field(
        &self,
        cursor: &mut Cursor<'_>,
        field: &FieldDef,
        depth: usize,
    ) -> Result<Value, JfrError> {
        if field.array {
            let len = cursor.count()?;
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(self.scalar(cursor, field, depth)?);
            }
            return Ok(Value::Array(items));
        }
        self.scalar(cursor, field, depth)
    }

    fn scalar(
        &self,
        cursor: &mut Cursor<'_>,
        field: &FieldDef,
        depth: usize,
    ) -> Result<Value, JfrError> {
        if field.constant_pool {
            return Ok(Value::Ref(cursor.long()? as u64));
        }
        let class = self.class(field.class_id)?;
        if let Some(primitive) = class.primitive {
            return primitive_value(cursor, primitive);
        }
        if depth >= MAX_DEPTH {
            return Err(JfrError::corrupt(format!(
                "type {} nests inline objects too deeply",
                class.name
            )));
        }
        let mut fields = Vec::with_capacity(class.fields.len());
        for inner in &class.fields {
            fields.push(self.field(cursor, inner, depth + 1)?);
        }
        Ok(Value::Object(fields))
    }

    /// Moves past one object of type `class` without keeping it.
    pub(crate) fn skip_object(
        &self,
        cursor: &mut Cursor<'_>,
        class: &ClassDef,
    ) -> Result<(), JfrError> {
        if let Some(primitive) = class.primitive {
            return skip_primitive(cursor, primitive);
        }
        for field in &class.fields {
            self.skip_field(cursor, field, 0)?;
        }
        Ok(())
    }

    pub(crate) fn skip_field(
        &self,
        cursor: &mut Cursor<'_>,
        field: &FieldDef,
        depth: usize,
    ) -> Result<(), JfrError> {
        let len = if field.array { cursor.count()? } else { 1 };
        for _ in 0..len {
            if field.constant_pool {
                cursor.long()?;
                continue;
            }
            let class = self.class(field.class_id)?;
            if let Some(primitive) = class.primitive {
                skip_primitive(cursor, primitive)?;
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(JfrError::corrupt(format!(
                    "type {} nests inline objects too deeply",
                    class.name
                )));
            }
            for inner in &class.fields {
                self.skip_field(cursor, inner, depth + 1)?;
            }
        }
        Ok(())
    }
}

fn primitive_value(cursor: &mut Cursor<'_>, primitive: Primitive) -> Result<Value, JfrError> {
    Ok(match primitive {
        Primitive::Boolean | Primitive::Byte => Value::Int(i64::from(cursor.u8()? as i8)),
        Primitive::Char => Value::Int(i64::from(cursor.char()?)),
        Primitive::Short => Value::Int(i64::from(cursor.short()?)),
        Primitive::Int => Value::Int(i64::from(cursor.int()?)),
        Primitive::Long => Value::Int(cursor.long()?),
        Primitive::Float => Value::Float(f64::from(cursor.float()?)),
        Primitive::Double => Value::Float(cursor.double()?),
        Primitive::String => match cursor.string()? {
            JfrString::Null => Value::Null,
            JfrString::PoolRef(key) => Value::StringRef(key),
            other => Value::String(other.into_owned().unwrap_or_default()),
        },
    })
}

fn skip_primitive(cursor: &mut Cursor<'_>, primitive: Primitive) -> Result<(), JfrError> {
    match primitive {
        Primitive::Boolean | Primitive::Byte => {
            cursor.u8()?;
        }
        Primitive::Char => {
            cursor.char()?;
        }
        Primitive::Short => {
            cursor.short()?;
        }
        Primitive::Int => {
            cursor.int()?;
        }
        Primitive::Long => {
            cursor.long()?;
        }
        Primitive::Float => {
            cursor.float()?;
        }
        Primitive::Double => {
            cursor.double()?;
        }
        Primitive::String => {
            cursor.string()?;
        }
    }
    Ok(())
}
