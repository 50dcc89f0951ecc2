//! Typed reads of one `[section]`: the one reader that keystone.conf, `[service_user]` and
//! `[keystone_authtoken]` use.

use std::time::Duration;

use crate::error::{ConfigError, ConfigErrorKind, Origin};
use crate::ini::{IniFile, OptionRef, Value};

/// Typed reads of one `[section]` of an [`IniFile`]. Values keep where they were set (file and
/// line, or environment variable), and every error is one line naming file, section and
/// option. Every getter substitutes `$option` references and returns `Ok(None)` when the
/// option is unset.
#[derive(Debug, Clone, Copy)]
pub struct SectionReader<'a> {
    ini: &'a IniFile,
    section: &'a str,
}

impl<'a> SectionReader<'a> {
    /// Reads `section` of `ini` (the name is also the one errors show).
    pub fn new(ini: &'a IniFile, section: &'a str) -> Self {
        SectionReader { ini, section }
    }

    /// The section name, as errors show it.
    pub fn section(&self) -> &'a str {
        self.section
    }

    /// Typed access to `option` (lists, choices, floats, ...).
    pub fn option<'b>(&self, option: &'b str) -> OptionRef<'b>
    where
        'a: 'b,
    {
        self.ini.option(self.section, option)
    }

    /// The raw value of `option` (the last one set), if any.
    pub fn value(&self, option: &str) -> Option<&'a Value> {
        self.ini.get(self.section, option)
    }

    /// The value of `option` the way keystoneauth reads its options: substituted and trimmed,
    /// with an empty value counting as unset. Also returns the value, for its origin and errors.
    pub fn text(&self, option: &str) -> Result<Option<(String, &'a Value)>, ConfigError> {
        let Some(value) = self.value(option) else {
            return Ok(None);
        };
        let text = self.option(option).string()?.unwrap_or_default();
        let text = text.trim().to_string();
        Ok((!text.is_empty()).then_some((text, value)))
    }

    /// [`SectionReader::text`] without the value: a trimmed string, empty meaning unset.
    pub fn string(&self, option: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.text(option)?.map(|(text, _)| text))
    }

    /// The substituted string as written (not trimmed), empty meaning unset.
    pub fn string_untrimmed(&self, option: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.option(option).string()?.filter(|s| !s.is_empty()))
    }

    /// A string that must not be empty when set.
    pub fn non_empty(&self, option: &str) -> Result<Option<String>, ConfigError> {
        self.custom(option, |text| {
            if text.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(text)
            }
        })
    }

    /// oslo.config's Boolean.
    pub fn bool(&self, option: &str) -> Result<Option<bool>, ConfigError> {
        self.option(option).bool()
    }

    /// A comma-separated list (items trimmed, empty items dropped).
    pub fn list(&self, option: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.option(option).list()
    }

    /// An integer within `min..=max`, converted to `T` ("integer out of range" when it does not
    /// fit). An empty value is unset, as in oslo.config.
    pub fn int<T: TryFrom<i64>>(
        &self,
        option: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<T>, ConfigError> {
        let handle = self.option(option);
        let (Some(value), Some(number)) = (handle.value(), handle.int(Some(min), Some(max))?)
        else {
            return Ok(None);
        };
        T::try_from(number)
            .map(Some)
            .map_err(|_| value.error(self.section, option, "integer out of range"))
    }

    /// An integer from `min` to `u32::MAX`.
    pub fn u32(&self, option: &str, min: u32) -> Result<Option<u32>, ConfigError> {
        self.int(option, i64::from(min), i64::from(u32::MAX))
    }

    /// Non-negative seconds, fractions allowed (at most a year).
    pub fn seconds(&self, option: &str) -> Result<Option<Duration>, ConfigError> {
        let handle = self.option(option);
        let (Some(value), Some(seconds)) = (handle.value(), handle.float()?) else {
            return Ok(None);
        };
        if seconds.is_finite() && (0.0..=86_400.0 * 365.0).contains(&seconds) {
            Ok(Some(Duration::from_secs_f64(seconds)))
        } else {
            Err(value.error(
                self.section,
                option,
                "must be a number of seconds, at least 0",
            ))
        }
    }

    /// Reads the substituted text (as written, empty included) and converts it with
    /// `convert`, whose error string becomes the reason of a one-line [`ConfigError`].
    pub fn custom<T>(
        &self,
        option: &str,
        convert: impl FnOnce(String) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let handle = self.option(option);
        let (Some(value), Some(text)) = (handle.value(), handle.string()?) else {
            return Ok(None);
        };
        convert(text)
            .map(Some)
            .map_err(|reason| value.error(self.section, option, reason))
    }

    /// Where the section starts; a section that is not there names itself.
    pub fn origin(&self) -> Origin {
        self.ini
            .section(self.section)
            .map(|s| s.origin().clone())
            .unwrap_or_else(|| Origin::Environment {
                var: format!("(no [{}] section)", self.section),
            })
    }

    /// A problem of the section as a whole.
    pub fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigErrorKind::Section {
            origin: self.origin(),
            section: self.section.to_owned(),
            reason: reason.into(),
        }
        .into()
    }

    /// An option that must be set and is not: `option X is not set: why`.
    pub fn missing(&self, option: &str, why: &str) -> ConfigError {
        self.error(format!("option {option} is not set: {why}"))
    }
}

impl IniFile {
    /// Typed reads of `section`.
    pub fn reader<'a>(&'a self, section: &'a str) -> SectionReader<'a> {
        SectionReader::new(self, section)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystoneauth_reading_and_section_errors() {
        let ini = IniFile::parse(
            "[s]\nname = \"  nova \"\nempty = \"  \"\nwait = 1.5\nlong = -1\n",
            "nova.conf",
        )
        .unwrap();
        let r = ini.reader("s");
        assert_eq!(r.string("name").unwrap().as_deref(), Some("nova"));
        assert_eq!(
            r.string_untrimmed("name").unwrap().as_deref(),
            Some("  nova ")
        );
        assert_eq!(r.string("empty").unwrap(), None);
        assert_eq!(
            r.text("name").unwrap().unwrap().1.origin().to_string(),
            "nova.conf:2"
        );
        assert_eq!(
            r.seconds("wait").unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            r.seconds("long").unwrap_err().to_string(),
            "nova.conf:5: [s] long = \"-1\": must be a number of seconds, at least 0"
        );
        assert_eq!(
            r.missing("password", "it is needed").to_string(),
            "nova.conf:1: [s]: option password is not set: it is needed"
        );
        assert_eq!(
            ini.reader("absent").error("empty").to_string(),
            "environment (no [absent] section): [absent]: empty"
        );
    }
}
