//! The metadata event (type id 0) of a chunk: a string table and a tree of elements that
//! declares every type the chunk uses — its id, name and fields (each field's type, whether it
//! is a constant-pool reference and whether it is an array). Reading is driven by these
//! declarations, so recordings from any JDK or async-profiler version decode the same way.

use super::cursor::Cursor;
use super::error::JfrError;
use rustc_hash::FxHashMap;

/// Deeper element trees than this are refused (real metadata nests four levels).
const MAX_ELEMENT_DEPTH: usize = 32;

/// How a type's values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Primitive {
    Boolean,
    Byte,
    Char,
    Short,
    Int,
    Long,
    Float,
    Double,
    String,
}

impl Primitive {
    fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "boolean" => Primitive::Boolean,
            "byte" => Primitive::Byte,
            "char" => Primitive::Char,
            "short" => Primitive::Short,
            "int" => Primitive::Int,
            "long" => Primitive::Long,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            "java.lang.String" => Primitive::String,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldDef {
    pub name: String,
    pub class_id: u64,
    pub constant_pool: bool,
    pub array: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClassDef {
    pub name: String,
    pub primitive: Option<Primitive>,
    pub fields: Vec<FieldDef>,
}

impl ClassDef {
    /// The position of the field called `name`.
    pub(crate) fn field(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// Every type a chunk declares, by id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Metadata {
    pub classes: FxHashMap<u64, ClassDef>,
}

impl Metadata {
    /// The id of the type called `name`.
    pub(crate) fn class_id(&self, name: &str) -> Option<u64> {
        self.classes
            .iter()
            .find(|(_, class)| class.name == name)
            .map(|(&id, _)| id)
    }

    /// Reads the metadata event that starts at the cursor.
    pub(crate) fn read(cursor: &mut Cursor<'_>) -> Result<Metadata, JfrError> {
        let at = cursor.pos();
        let size = cursor.int()?;
        let size = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_sub(cursor.pos() - at))
            .ok_or_else(|| JfrError::corrupt(format!("metadata event size {size} is invalid")))?;
        let mut event = cursor.split(size)?;
        let kind = event.long()?;
        if kind != 0 {
            return Err(JfrError::corrupt(format!(
                "the metadata offset points at an event of type {kind}, not the metadata"
            )));
        }
        let _start = event.long()?;
        let _duration = event.long()?;
        let _id = event.long()?;
        let count = event.count()?;
        let mut strings = Vec::with_capacity(count);
        for _ in 0..count {
            strings.push(event.string()?.into_owned().unwrap_or_default());
        }
        let root = read_element(&mut event, &strings, 0)?;
        let mut metadata = Metadata::default();
        collect_classes(&root, &mut metadata)?;
        Ok(metadata)
    }
}

/// One node of the metadata tree.
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
}

impl Element {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn string_at(strings: &[String], cursor: &mut Cursor<'_>) -> Result<String, JfrError> {
    let at = cursor.pos();
    let index = cursor.int()?;
    usize::try_from(index)
        .ok()
        .and_then(|i| strings.get(i))
        .cloned()
        .ok_or_else(|| {
            JfrError::corrupt(format!(
                "metadata string index {index} at offset {at} is out of range"
            ))
        })
}

fn read_element(
    cursor: &mut Cursor<'_>,
    strings: &[String],
    depth: usize,
) -> Result<Element, JfrError> {
    if depth > MAX_ELEMENT_DEPTH {
        return Err(JfrError::corrupt("metadata elements nest too deeply"));
    }
    let name = string_at(strings, cursor)?;
    let count = cursor.count()?;
    let mut attributes = Vec::with_capacity(count);
    for _ in 0..count {
        let key = string_at(strings, cursor)?;
        let value = string_at(strings, cursor)?;
        attributes.push((key, value));
    }
    let count = cursor.count()?;
    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        children.push(read_element(cursor, strings, depth + 1)?);
    }
    Ok(Element {
        name,
        attributes,
        children,
    })
}

fn collect_classes(element: &Element, metadata: &mut Metadata) -> Result<(), JfrError> {
    if element.name == "class" {
        let id = parse_id(element.attribute("id"), "class id")?;
        let name = element.attribute("name").unwrap_or_default().to_owned();
        let mut fields = Vec::new();
        for child in element.children.iter().filter(|c| c.name == "field") {
            fields.push(FieldDef {
                name: child.attribute("name").unwrap_or_default().to_owned(),
                class_id: parse_id(child.attribute("class"), "field type")?,
                constant_pool: child.attribute("constantPool") == Some("true"),
                array: child
                    .attribute("dimension")
                    .is_some_and(|d| d.parse::<u32>().is_ok_and(|d| d > 0)),
            });
        }
        let primitive = Primitive::from_name(&name);
        metadata.classes.insert(
            id,
            ClassDef {
                name,
                primitive,
                fields,
            },
        );
        return Ok(());
    }
    for child in &element.children {
        collect_classes(child, metadata)?;
    }
    Ok(())
}

fn parse_id(value: Option<&str>, what: &str) -> Result<u64, JfrError> {
    let value = value.ok_or_else(|| JfrError::corrupt(format!("metadata {what} is missing")))?;
    value
        .parse()
        .map_err(|_| JfrError::corrupt(format!("metadata {what} {value:?} is not a number")))
}
