//! Label matchers with Prometheus semantics (`api.md` §6.4): `=`, `!=`, `=~`, `!~`, regexes
//! fully anchored, a missing label matching as the empty string; and the selector syntax
//! `{a="b", c!~"d.*"}` with an optional leading name (a profile type id in `/render`).

use crate::Labels;
use regex::Regex;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher. It travels (a query plan sent to another process) as its name, operator
/// and value; its regex is compiled again on arrival.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "MatcherParts", into = "MatcherParts")]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("invalid regex {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
    #[error("parse error at char {position}: {message}")]
    Parse { position: usize, message: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MatcherParts {
    name: String,
    op: MatchOp,
    value: String,
}

impl TryFrom<MatcherParts> for Matcher {
    type Error = SelectorError;

    fn try_from(parts: MatcherParts) -> Result<Matcher, SelectorError> {
        Matcher::new(parts.name, parts.op, parts.value)
    }
}

impl From<Matcher> for MatcherParts {
    fn from(matcher: Matcher) -> MatcherParts {
        MatcherParts {
            name: matcher.name,
            op: matcher.op,
            value: matcher.value,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, SelectorError> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| SelectorError::Regex {
                    pattern: value.clone(),
                    message: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (None: the label is absent, which matches as "") passes.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether a label set passes.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// A parsed selector: an optional leading name and the matchers in braces.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: Option<String>,
    pub matchers: Vec<Matcher>,
}

/// Parses `name{a="b", c=~"d"}`, `{a="b"}` or `name`. Values are double-quoted with
/// backslash escapes; the name may contain `:` (profile type ids).
pub fn parse_selector(input: &str) -> Result<Selector, SelectorError> {
    let chars: Vec<char> = input.chars().collect();
    let mut at = 0usize;
    let error = |position: usize, message: &str| SelectorError::Parse {
        position,
        message: message.to_owned(),
    };
    let skip_spaces = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let is_name_char = |c: char, extra: bool| {
        c.is_ascii_alphanumeric() || c == '_' || (extra && (c == ':' || c == '.'))
    };
    skip_spaces(&mut at);
    let start = at;
    while at < chars.len() && is_name_char(chars[at], true) {
        at += 1;
    }
    let name = (at > start).then(|| chars[start..at].iter().collect::<String>());
    skip_spaces(&mut at);
    let mut matchers = Vec::new();
    if at == chars.len() {
        if name.is_none() {
            return Err(error(at, "empty selector"));
        }
        return Ok(Selector { name, matchers });
    }
    if chars[at] != '{' {
        return Err(error(at, "expected '{'"));
    }
    at += 1;
    loop {
        skip_spaces(&mut at);
        if at < chars.len() && chars[at] == '}' {
            at += 1;
            break;
        }
        let label_start = at;
        while at < chars.len() && is_name_char(chars[at], true) {
            at += 1;
        }
        if at == label_start {
            return Err(error(at, "expected a label name"));
        }
        let label: String = chars[label_start..at].iter().collect();
        skip_spaces(&mut at);
        let op = match (chars.get(at), chars.get(at + 1)) {
            (Some('='), Some('~')) => (MatchOp::Regex, 2),
            (Some('!'), Some('~')) => (MatchOp::NotRegex, 2),
            (Some('!'), Some('=')) => (MatchOp::NotEqual, 2),
            (Some('='), _) => (MatchOp::Equal, 1),
            _ => return Err(error(at, "expected one of =, !=, =~, !~")),
        };
        at += op.1;
        skip_spaces(&mut at);
        if chars.get(at) != Some(&'"') {
            return Err(error(at, "expected a double-quoted value"));
        }
        at += 1;
        let mut value = String::new();
        loop {
            match chars.get(at) {
                None => return Err(error(at, "unterminated string")),
                Some('"') => {
                    at += 1;
                    break;
                }
                Some('\\') => {
                    let escaped = chars
                        .get(at + 1)
                        .ok_or_else(|| error(at, "unterminated escape"))?;
                    value.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        other => *other,
                    });
                    at += 2;
                }
                Some(c) => {
                    value.push(*c);
                    at += 1;
                }
            }
        }
        matchers.push(Matcher::new(label, op.0, value)?);
        skip_spaces(&mut at);
        match chars.get(at) {
            Some(',') => at += 1,
            Some('}') => {}
            _ => return Err(error(at, "expected ',' or '}'")),
        }
    }
    skip_spaces(&mut at);
    if at != chars.len() {
        return Err(error(at, "unexpected text after '}'"));
    }
    Ok(Selector { name, matchers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let selector = parse_selector(
            r#"process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="app", pod!="x", env=~"prod|stag.*", zone!~"eu-.*"}"#,
        )
        .expect("valid");
        assert_eq!(
            selector.name.as_deref(),
            Some("process_cpu:cpu:nanoseconds:cpu:nanoseconds")
        );
        assert_eq!(selector.matchers.len(), 4);
        let labels = Labels::from_pairs([
            ("service_name", "app"),
            ("env", "staging"),
            ("zone", "us-1"),
        ]);
        assert!(selector.matchers.iter().all(|m| m.matches_labels(&labels)));
        let other = Labels::from_pairs([("service_name", "app"), ("env", "prodx")]);
        assert!(
            !selector.matchers.iter().all(|m| m.matches_labels(&other)),
            "regexes are anchored"
        );
        assert_eq!(
            parse_selector("{}").expect("empty braces").matchers.len(),
            0
        );
        let escaped = parse_selector(r#"{a="q\"uote"}"#).expect("escape");
        assert_eq!(escaped.matchers[0].value, "q\"uote");
    }

    #[test]
    fn missing_labels_match_as_empty() {
        let absent = Matcher::new("pod", MatchOp::Equal, "").expect("valid");
        assert!(absent.matches(None));
        let not_empty = Matcher::new("pod", MatchOp::Regex, ".+").expect("valid");
        assert!(!not_empty.matches(None));
    }

    #[test]
    fn errors() {
        assert!(parse_selector("").is_err());
        assert!(parse_selector("{a=b}").is_err());
        assert!(parse_selector(r#"{a="b""#).is_err());
        assert!(parse_selector(r#"{a=~"("}"#).is_err());
        assert!(parse_selector(r#"{a="b"} x"#).is_err());
    }
}
