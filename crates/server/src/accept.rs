//! The `Accept` check Pyroscope applies to every route before anything else
//! (`ClientCapabilitiesHttpMiddleware`, `api.md` §1): each comma-separated entry of every
//! `Accept` header must parse as a media type by the rules of Go's `mime.ParseMediaType`, or the
//! request is answered `400 Invalid header format: <Go's error>` in plain text.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(crate) async fn validate(request: Request, next: Next) -> Response {
    for value in request.headers().get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return invalid("mime: no media type");
        };
        if value.is_empty() {
            continue;
        }
        if let Some(error) = value.split(',').find_map(|entry| check(entry).err()) {
            return invalid(error);
        }
    }
    next.run(request).await
}

fn invalid(error: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Invalid header format: {error}\n"),
    )
        .into_response()
}

/// Go's token characters: printable ASCII except the separators of RFC 1521.
fn is_token_char(c: char) -> bool {
    c.is_ascii() && c > ' ' && c != '\x7f' && !"()<>@,;:\\\"/[]?=".contains(c)
}

fn consume_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// A quoted string (escapes allowed) or a token; `None` when neither.
fn consume_value(s: &str) -> Option<(&str, &str)> {
    let Some(inner) = s.strip_prefix('"') else {
        let (token, rest) = consume_token(s);
        return (!token.is_empty()).then_some((token, rest));
    };
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some((&inner[..i], &inner[i + 1..])),
            '\r' | '\n' => return None,
            _ => {}
        }
    }
    None
}

/// `Ok` when Go's `mime.ParseMediaType(entry)` succeeds, else its error text.
pub(crate) fn check(entry: &str) -> Result<(), &'static str> {
    let (base, params) = entry
        .split_once(';')
        .map_or((entry, None), |(b, p)| (b, Some(p)));
    let media_type = base.trim();
    let (kind, rest) = consume_token(media_type);
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let Some(rest) = rest.strip_prefix('/') else {
            return Err("mime: expected slash after first token");
        };
        let (subtype, rest) = consume_token(rest);
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let Some(params) = params else {
        return Ok(());
    };
    let mut seen: Vec<String> = Vec::new();
    let mut rest = format!(";{params}");
    loop {
        let v = rest.trim_start();
        if v.is_empty() {
            return Ok(());
        }
        match parse_param(v) {
            Some((key, after)) => {
                let key = key.to_ascii_lowercase();
                if seen.contains(&key) {
                    return Err("mime: duplicate parameter name");
                }
                seen.push(key);
                rest = after.to_owned();
            }
            // Trailing semicolons are ignored.
            None if v.trim() == ";" => return Ok(()),
            None => return Err("mime: invalid media parameter"),
        }
    }
}

/// `; key=value` at the start of `v`: the key and what follows.
fn parse_param(v: &str) -> Option<(&str, &str)> {
    let rest = v.strip_prefix(';')?.trim_start();
    let (key, rest) = consume_token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (_, rest) = consume_value(rest)?;
    Some((key, rest))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn media_types_as_go_parses_them() {
        for ok in [
            "*/*",
            "application/json",
            " text/html ",
            "application/xml;q=0.9",
            "image/webp; q=0.8",
            "text/plain; charset=\"utf-8\"",
            "text/plain;",
            "text",
            "application/json+pretty",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
        for (bad, error) in [
            ("", "mime: no media type"),
            ("/json", "mime: no media type"),
            ("text/", "mime: expected token after slash"),
            ("text json", "mime: expected slash after first token"),
            (
                "text/html html",
                "mime: unexpected content after media subtype",
            ),
            ("text/html; q", "mime: invalid media parameter"),
            ("text/html; q=\"0.9", "mime: invalid media parameter"),
            ("text/html; q=1; Q=2", "mime: duplicate parameter name"),
        ] {
            assert_eq!(check(bad), Err(error), "{bad:?}");
        }
    }
}
