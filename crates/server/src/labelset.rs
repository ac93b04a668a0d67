//! The `name` parameter of `/ingest`: `app.name{key=value,key2=value2}` (`api.md` §2.1).

use crate::error::{ApiError, Code};

/// The application name and its labels, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

/// Parses `name`; the errors are Pyroscope's.
pub fn parse(input: &str) -> Result<AppName, ApiError> {
    let (name, rest) = match input.find('{') {
        Some(open) => (&input[..open], Some(&input[open + 1..])),
        None => (input, None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::new(
            Code::InvalidArgument,
            "service name is required",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
    {
        return Err(ApiError::new(
            Code::InvalidArgument,
            format!("name: invalid service name: {name}"),
        ));
    }
    let mut labels = Vec::new();
    if let Some(rest) = rest {
        let body = rest.strip_suffix('}').unwrap_or(rest);
        for pair in body.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(ApiError::new(
                    Code::InvalidArgument,
                    format!("name: invalid label {pair}"),
                ));
            };
            let key = key.trim();
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
            {
                return Err(ApiError::new(
                    Code::InvalidArgument,
                    format!("name: invalid label key {key}"),
                ));
            }
            labels.push((key.to_owned(), value.trim().to_owned()));
        }
    }
    Ok(AppName {
        name: name.to_owned(),
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_app_and_labels() {
        let parsed =
            parse("research.node.app{env=test, region=local,otel.scope.name=com.grafana/nodejs}")
                .expect("valid");
        assert_eq!(parsed.name, "research.node.app");
        assert_eq!(parsed.labels[0], ("env".to_owned(), "test".to_owned()));
        assert_eq!(
            parsed.labels[2],
            (
                "otel.scope.name".to_owned(),
                "com.grafana/nodejs".to_owned()
            )
        );
        assert!(parse("").is_err());
        assert!(parse("{a=b}").is_err());
        assert!(parse("bad name{").is_err());
    }
}
