//! Collapsed ("folded") text: one `frame;frame;leaf VALUE` line per stack, sorted, equal stacks
//! summed, zero values dropped. This is the comparison form of every golden test.

use crate::tree::Tree;
use std::fmt::Write as _;

/// Why a line of collapsed text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollapsedError {
    #[error("line {line}: expected \"stack value\", found no space")]
    MissingValue { line: usize },
    #[error("line {line}: value {value:?} is not an integer")]
    BadValue { line: usize, value: String },
}

/// Writes the tree's stacks as sorted collapsed text.
pub fn write_collapsed(tree: &Tree) -> String {
    let mut lines: Vec<(String, i64)> = tree
        .stacks()
        .into_iter()
        .map(|(path, value)| (path.join(";"), value))
        .collect();
    lines.sort_unstable();
    let mut out = String::new();
    for (stack, value) in lines {
        let _ = writeln!(out, "{stack} {value}");
    }
    out
}

/// Reads collapsed text (split at the last space of each line) into a tree.
pub fn parse_collapsed(text: &str) -> Result<Tree, CollapsedError> {
    let mut tree = Tree::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let Some((stack, value)) = line.rsplit_once(' ') else {
            return Err(CollapsedError::MissingValue { line: index + 1 });
        };
        let value: i64 = value.parse().map_err(|_| CollapsedError::BadValue {
            line: index + 1,
            value: value.to_owned(),
        })?;
        let frames: Vec<&str> = stack.split(';').collect();
        tree.insert(&frames, value);
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorts_and_sums() {
        let tree = parse_collapsed("b;c 2\na;b 1\na;b 1\nz 0\n").expect("valid");
        assert_eq!(write_collapsed(&tree), "a;b 2\nb;c 2\n");
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(matches!(
            parse_collapsed("a;b"),
            Err(CollapsedError::MissingValue { line: 1 })
        ));
        assert!(matches!(
            parse_collapsed("a x"),
            Err(CollapsedError::BadValue { line: 1, .. })
        ));
    }
}
