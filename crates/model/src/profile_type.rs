//! Profile type ids: `name:sample_type:sample_unit:period_type:period_unit` (`api.md` §6.2).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProfileType {
    /// The series' `__name__` (`process_cpu`, `memory`, …).
    pub name: String,
    pub sample_type: String,
    pub sample_unit: String,
    pub period_type: String,
    pub period_unit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileTypeError {
    #[error(
        "profile-type selection must be of the form <name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), got {0}"
    )]
    Malformed(String),
}

impl fmt::Display for ProfileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.name, self.sample_type, self.sample_unit, self.period_type, self.period_unit
        )
    }
}

impl FromStr for ProfileType {
    type Err = ProfileTypeError;

    /// Parses 5 parts; a 6th `delta` part is accepted and ignored, as Pyroscope does.
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = id.split(':').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return Err(ProfileTypeError::Malformed(id.to_owned()));
        }
        Ok(ProfileType {
            name: parts[0].to_owned(),
            sample_type: parts[1].to_owned(),
            sample_unit: parts[2].to_owned(),
            period_type: parts[3].to_owned(),
            period_unit: parts[4].to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for id in [
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            "memory:samples:bytes::",
        ] {
            let parsed: ProfileType = id.parse().expect("valid id");
            assert_eq!(parsed.to_string(), id);
        }
        let with_delta: ProfileType = "a:b:c:d:e:delta".parse().expect("valid id");
        assert_eq!(with_delta.to_string(), "a:b:c:d:e");
        assert!("a:b:c".parse::<ProfileType>().is_err());
    }
}
