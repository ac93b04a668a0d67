//! Label sets: name/value pairs kept sorted by name, as Pyroscope identifies a series.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelPair {
    pub name: String,
    pub value: String,
}

impl LabelPair {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set sorted by name (then value). Setting a name that exists replaces its value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<LabelPair>);

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a sorted set from pairs; a later pair with the same name wins.
    pub fn from_pairs<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels = Self::new();
        for (name, value) in pairs {
            labels.set(name, value);
        }
        labels
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .map(|index| self.0[index].value.as_str())
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Ok(index) => self.0[index].value = value,
            Err(index) => self.0.insert(index, LabelPair { name, value }),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.position(name)
            .ok()
            .map(|index| self.0.remove(index).value)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &LabelPair> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|pair| pair.name.as_str().cmp(name))
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a LabelPair;
    type IntoIter = std::slice::Iter<'a, LabelPair>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Labels {
    /// `{a="b", c="d"}`, the Prometheus form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, pair) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", pair.name, pair.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_replacing() {
        let mut labels = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(labels.get("b"), Some("3"));
        assert_eq!(labels.to_string(), r#"{a="2", b="3"}"#);
        labels.remove("a");
        assert_eq!(labels.len(), 1);
    }
}
