//! The constant pools of a chunk (checkpoint events, type id 1), kept for the types a profile
//! needs — strings, symbols, classes, methods, stack traces, thread states — and
//! skipped for every other type. Entries stay as keys into each other until they are looked
//! up, because a pool may refer to entries written after it.

use super::cursor::Cursor;
use super::error::JfrError;
use super::metadata::{ClassDef, Metadata};
use super::value::{Decoder, Value};
use rustc_hash::FxHashMap;

/// One frame of a stack trace: a method and the line it was at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub method: u64,
    pub line: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method {
    /// A key into the class pool.
    pub class: Option<u64>,
    /// A key into the symbol pool.
    pub name: Option<u64>,
}

/// A string as a pool entry holds it: in place, or a key into the string pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    Inline(String),
    Ref(u64),
}

impl Text {
    fn from_value(value: &Value) -> Option<Text> {
        match value {
            Value::String(text) => Some(Text::Inline(text.clone())),
            Value::StringRef(key) | Value::Ref(key) => Some(Text::Ref(*key)),
            _ => None,
        }
    }
}

/// The pools of one chunk that profiles use.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    pub strings: FxHashMap<u64, String>,
    pub symbols: FxHashMap<u64, Text>,
    /// Class key → its name (a symbol key).
    pub classes: FxHashMap<u64, Option<u64>>,
    pub methods: FxHashMap<u64, Method>,
    /// Stack trace key → frames, leaf first.
    pub stack_traces: FxHashMap<u64, Vec<Frame>>,
    /// Thread state key → its name (`STATE_RUNNABLE`, …).
    pub thread_states: FxHashMap<u64, Option<Text>>,
}

impl Pools {
    /// The text a pool entry holds.
    pub(crate) fn text<'a>(&'a self, text: &'a Text) -> Option<&'a str> {
        match text {
            Text::Inline(text) => Some(text),
            Text::Ref(key) => self.strings.get(key).map(String::as_str),
        }
    }

    pub(crate) fn symbol(&self, key: u64) -> Option<&str> {
        self.symbols.get(&key).and_then(|t| self.text(t))
    }

    pub(crate) fn class_name(&self, key: u64) -> Option<&str> {
        self.classes
            .get(&key)
            .copied()
            .flatten()
            .and_then(|symbol| self.symbol(symbol))
    }

    pub(crate) fn thread_state(&self, key: u64) -> Option<&str> {
        self.thread_states
            .get(&key)
            .and_then(Option::as_ref)
            .and_then(|t| self.text(t))
    }

    /// Reads one checkpoint event that starts at the cursor (its size and type already read).
    pub(crate) fn read_checkpoint(
        &mut self,
        event: &mut Cursor<'_>,
        decoder: &Decoder<'_>,
        kinds: &PoolKinds,
    ) -> Result<(), JfrError> {
        let _start = event.long()?;
        let _duration = event.long()?;
        let _delta = event.long()?;
        let _flush = event.u8()?;
        let pools = event.count()?;
        let mut fields = Vec::new();
        for _ in 0..pools {
            let class_id = event.long()? as u64;
            let class = decoder.class(class_id)?;
            let entries = event.count()?;
            let kind = kinds.kind(class_id);
            for _ in 0..entries {
                let key = event.long()? as u64;
                if kind == PoolKind::Other {
                    decoder.skip_object(event, class)?;
                    continue;
                }
                if kind == PoolKind::StackTrace {
                    let frames = kinds.read_stack_trace(event, class, decoder)?;
                    self.stack_traces.insert(key, frames);
                    continue;
                }
                decoder.object_into(event, class, &mut fields)?;
                self.keep(kind, class, key, &fields);
            }
        }
        Ok(())
    }

    fn keep(&mut self, kind: PoolKind, class: &ClassDef, key: u64, fields: &[Value]) {
        let get = |name: &str| class.field(name).and_then(|i| fields.get(i));
        match kind {
            PoolKind::String => {
                if let Some(Value::String(text)) = fields.first() {
                    self.strings.insert(key, text.clone());
                }
            }
            PoolKind::Symbol => {
                if let Some(text) = get("string").and_then(Text::from_value) {
                    self.symbols.insert(key, text);
                }
            }
            PoolKind::Class => {
                let name = get("name").and_then(Value::as_ref_key);
                self.classes.insert(key, name);
            }
            PoolKind::Method => {
                let method = Method {
                    class: get("type").and_then(Value::as_ref_key),
                    name: get("name").and_then(Value::as_ref_key),
                };
                self.methods.insert(key, method);
            }
            PoolKind::ThreadState => {
                self.thread_states
                    .insert(key, get("name").and_then(Text::from_value));
            }
            PoolKind::StackTrace | PoolKind::Other => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolKind {
    String,
    Symbol,
    Class,
    Method,
    StackTrace,
    ThreadState,
    Other,
}

/// Which pool kind each type id of a chunk is.
#[derive(Debug, Default)]
pub(crate) struct PoolKinds {
    kinds: FxHashMap<u64, PoolKind>,
    /// Where `jdk.types.StackFrame` keeps its method and line number.
    frame_method: Option<usize>,
    frame_line: Option<usize>,
}

impl PoolKinds {
    pub(crate) fn new(metadata: &Metadata) -> PoolKinds {
        let mut kinds = FxHashMap::default();
        for (&id, class) in &metadata.classes {
            let kind = match class.name.as_str() {
                "java.lang.String" => PoolKind::String,
                "jdk.types.Symbol" => PoolKind::Symbol,
                "java.lang.Class" => PoolKind::Class,
                "jdk.types.Method" => PoolKind::Method,
                "jdk.types.StackTrace" => PoolKind::StackTrace,
                "jdk.types.ThreadState" => PoolKind::ThreadState,
                _ => continue,
            };
            kinds.insert(id, kind);
        }
        let frame_class = metadata
            .class_id("jdk.types.StackFrame")
            .and_then(|id| metadata.classes.get(&id));
        PoolKinds {
            kinds,
            frame_method: frame_class.and_then(|c| c.field("method")),
            frame_line: frame_class.and_then(|c| c.field("lineNumber")),
        }
    }

    /// A `jdk.types.StackTrace` entry, read straight into frames (a recording's largest pool:
    /// no intermediate values). Frames without a method are left out.
    fn read_stack_trace(
        &self,
        cursor: &mut Cursor<'_>,
        class: &ClassDef,
        decoder: &Decoder<'_>,
    ) -> Result<Vec<Frame>, JfrError> {
        let mut frames = Vec::new();
        for field in &class.fields {
            if field.name != "frames" || !field.array || field.constant_pool {
                decoder.skip_field(cursor, field, 0)?;
                continue;
            }
            let frame_class = decoder.class(field.class_id)?;
            let len = cursor.count()?;
            frames.reserve(len.min(1024));
            for _ in 0..len {
                let (mut method, mut line) = (None, 0);
                for (index, inner) in frame_class.fields.iter().enumerate() {
                    if Some(index) == self.frame_method || Some(index) == self.frame_line {
                        let value = decoder.field(cursor, inner, 1)?;
                        if Some(index) == self.frame_method {
                            method = value.as_ref_key();
                        } else {
                            line = value.as_i64().unwrap_or(0);
                        }
                    } else {
                        decoder.skip_field(cursor, inner, 1)?;
                    }
                }
                if let Some(method) = method {
                    frames.push(Frame { method, line });
                }
            }
        }
        Ok(frames)
    }

    fn kind(&self, class_id: u64) -> PoolKind {
        self.kinds
            .get(&class_id)
            .copied()
            .unwrap_or(PoolKind::Other)
    }
}
