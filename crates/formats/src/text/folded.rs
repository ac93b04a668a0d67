//! The two line formats of `/ingest`: folded text (`ParseGroups`: `stack count` per line, split
//! at the last space) and individual lines (`ParseIndividualLines`: one stack per line).
//!
//! Lines end at `\n`, one trailing `\r` is dropped (Go's `bufio.ScanLines`). Unlike Go's
//! scanner, lines longer than 64 KiB are read whole rather than ending the body early.

use super::TextError;
use super::stacks::StackTree;

fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// Folded text: each line `a;b;c count`. A line without a space is skipped; a count that is not
/// a signed 64-bit decimal integer (Go's `strconv.Atoi`) fails the whole body. Negative counts
/// are kept (with wraparound, as Pyroscope's unsigned tree does).
pub(crate) fn parse_folded(body: &[u8], tree: &mut StackTree) -> Result<(), TextError> {
    if body.is_empty() {
        return Ok(());
    }
    for (index, line) in lines(body).enumerate() {
        let Some(space) = line.iter().rposition(|&b| b == b' ') else {
            continue;
        };
        let (stack, count) = line.split_at(space);
        let count = count.get(1..).unwrap_or_default();
        let value = std::str::from_utf8(count)
            .ok()
            .and_then(|c| c.parse::<i64>().ok())
            .ok_or_else(|| TextError::BadCount {
                line: index + 1,
                count: String::from_utf8_lossy(count).chars().take(100).collect(),
            })?;
        tree.insert_key(stack, value)?;
    }
    Ok(())
}

/// Individual lines: each non-empty line is a stack counted once.
pub(crate) fn parse_lines(body: &[u8], tree: &mut StackTree) -> Result<(), TextError> {
    if body.is_empty() {
        return Ok(());
    }
    for line in lines(body) {
        if !line.is_empty() {
            tree.insert_key(line, 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TextLimits;

    fn folded(body: &str) -> Result<String, TextError> {
        let mut tree = StackTree::new(TextLimits::default());
        parse_folded(body.as_bytes(), &mut tree)?;
        Ok(tree.collapsed())
    }

    fn individual(body: &str) -> String {
        let mut tree = StackTree::new(TextLimits::default());
        parse_lines(body.as_bytes(), &mut tree).expect("lines never fail");
        tree.collapsed()
    }

    #[test]
    fn folded_lines_are_split_at_the_last_space() {
        let body = "foo;bar 100\nfoo;bar 1\r\nfoo;baz qux 3\n\nno_count\nfoo;bar +2\nzero 0\n";
        assert_eq!(folded(body).expect("valid"), "foo;bar 103\nfoo;baz qux 3\n");
        assert_eq!(folded("").expect("empty"), "");
        assert_eq!(folded("a 5").expect("no final newline"), "a 5\n");
        // The empty stack is the root; negative counts subtract.
        assert_eq!(folded(" 5\na 3\na -1").expect("valid"), " 5\na 2\n");
    }

    #[test]
    fn bad_counts_fail_the_body() {
        for (body, line, count) in [
            ("a 1\nb x\n", 2, "x"),
            ("a 1 \n", 1, ""),
            ("a 1.5\n", 1, "1.5"),
            ("a 0x10\n", 1, "0x10"),
            ("a 99999999999999999999\n", 1, "99999999999999999999"),
        ] {
            let err = folded(body).expect_err(body);
            assert!(
                matches!(&err, TextError::BadCount { line: l, count: c } if *l == line && c == count),
                "{body:?}: {err}"
            );
        }
        assert_eq!(
            folded("a;b oops").expect_err("bad").to_string(),
            "line 1: sample count \"oops\" is not an integer"
        );
    }

    #[test]
    fn individual_lines_count_once_each() {
        assert_eq!(
            individual("a;b;c\na;b\r\na;b;c\n\nd 5\n"),
            "a;b 1\na;b;c 2\nd 5 1\n"
        );
        assert_eq!(individual(""), "");
        assert_eq!(individual("\n\n"), "");
    }
}
