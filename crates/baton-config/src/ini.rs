//! A reader for oslo.config-style INI files.
//!
//! The grammar follows `oslo_config/iniparser.py` line by line:
//!
//! * trailing whitespace is stripped from every line; a blank line ends a
//!   multi-line value;
//! * a line starting with a space or tab continues the previous value (the
//!   continuation is left-stripped and joined with `\n`); with no value to
//!   continue it is an error;
//! * `[name]` starts a section (the line must end with `]`, the name must not
//!   be empty, and it is not trimmed);
//! * a line starting with `#` or `;` is a comment; a `#` later in a line is
//!   ordinary value text;
//! * anything else is `key = value` or `key: value`, split at whichever of
//!   `=`/`:` comes first; key and value are trimmed, and a value whose first
//!   and last characters are the same quote (`"` or `'`) loses them;
//! * an option outside any section is an error.
//!
//! Section names are compared the way oslo.config normalises them: `DEFAULT`
//! exactly, every other name case-insensitively. Option names are
//! case-sensitive. A key repeated in a section (or across merged files) keeps
//! every occurrence: [`IniFile::get_all`] returns them in order and
//! [`IniFile::get`] the last one. `[DEFAULT]` is not merged into other sections;
//! use [`IniFile::option_or_default`] to fall back to it explicitly.
//!
//! Typed getters substitute `$option`, `${option}` and `${section.option}`
//! (same section first, then `[DEFAULT]`); `$$` and `\$` give a literal `$`.
//! A reference to an option that is not set is an error rather than an empty
//! string, because in practice it is almost always a password containing `$`.

use std::path::Path;
use std::sync::Arc;

use crate::error::{ConfigError, ConfigErrorKind, Origin};

/// Name of the special section whose options other sections may fall back to.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Prefix of environment overrides: `BATON__<SECTION>__<OPTION>=value`.
pub const ENV_PREFIX: &str = "BATON__";

/// Limit on nested `$option` references, as a guard against pathological input.
const MAX_SUBSTITUTION_DEPTH: usize = 32;

/// One value of an option, with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    raw: String,
    origin: Origin,
}

impl Value {
    /// The text as parsed: unquoted and with continuation lines joined, but
    /// without `$option` substitution.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The file and line, or environment variable, that set this value.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// A one-line error about this value of `[section] option`, for checks
    /// the typed getters do not cover.
    pub fn error(&self, section: &str, option: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::value(&self.origin, section, option, &self.raw, reason)
    }
}

/// A `[section]` gathered from one or more files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    origin: Origin,
    entries: Vec<(String, Value)>,
}

impl Section {
    /// The name as first written (`[Token]` stays `Token`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the section was first started.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Every `key = value` in order of appearance, repeats included.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Distinct option names in order of first appearance.
    pub fn option_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (key, _) in &self.entries {
            if !names.contains(&key.as_str()) {
                names.push(key);
            }
        }
        names
    }

    fn last(&self, option: &str) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == option)
            .map(|(_, v)| v)
    }
}

/// Parsed configuration from zero or more files plus environment overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniFile {
    sections: Vec<Section>,
    sources: Vec<Arc<str>>,
}

/// oslo.config's group-name normalisation: `DEFAULT` is kept, everything else
/// is lower-cased.
pub(crate) fn normalize_section(name: &str) -> String {
    if name == DEFAULT_SECTION {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}

fn same_section(a: &str, b: &str) -> bool {
    normalize_section(a) == normalize_section(b)
}

/// A `key = value` whose continuation lines may still follow.
struct Pending {
    key: String,
    lines: Vec<String>,
    line_no: usize,
}

impl IniFile {
    /// An empty configuration (every option unset).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `text`; `source_name` is used in origins and error messages.
    pub fn parse(text: &str, source_name: &str) -> Result<IniFile, ConfigError> {
        let name: Arc<str> = Arc::from(source_name);
        let mut ini = IniFile {
            sections: Vec::new(),
            sources: vec![name.clone()],
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut current: Option<usize> = None;
        let mut pending: Option<Pending> = None;

        let syntax = |line_no: usize, line: &str, reason: &str| -> ConfigError {
            ConfigErrorKind::Syntax {
                origin: Origin::File {
                    name: name.clone(),
                    line: line_no,
                },
                line: line.to_owned(),
                reason: reason.to_owned(),
            }
            .into()
        };

        for (index, raw_line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw_line.trim_end();

            if line.is_empty() {
                ini.flush(current, pending.take(), &name);
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match pending.as_mut() {
                    Some(p) => p.lines.push(line.trim_start().to_owned()),
                    None => {
                        return Err(syntax(
                            line_no,
                            line,
                            "indented continuation line without an option to continue",
                        ))
                    }
                }
                continue;
            }
            ini.flush(current, pending.take(), &name);

            if line.starts_with('[') {
                if !line.ends_with(']') {
                    return Err(syntax(line_no, line, "section header must end with \"]\""));
                }
                if line.len() <= 2 {
                    return Err(syntax(line_no, line, "empty section name"));
                }
                let section = &line[1..line.len() - 1];
                let origin = Origin::File {
                    name: name.clone(),
                    line: line_no,
                };
                current = Some(ini.section_index_or_insert(section, origin));
            } else if line.starts_with(['#', ';']) {
                // Full-line comment.
            } else {
                let (key, value) = split_key_value(line).ok_or_else(|| {
                    syntax(line_no, line, "expected \"key = value\" or \"key: value\"")
                })?;
                if key.is_empty() {
                    return Err(syntax(line_no, line, "empty option name"));
                }
                if current.is_none() {
                    return Err(syntax(
                        line_no,
                        line,
                        "option appears before any [section] header",
                    ));
                }
                pending = Some(Pending {
                    key: key.to_owned(),
                    lines: vec![value.to_owned()],
                    line_no,
                });
            }
        }
        ini.flush(current, pending.take(), &name);
        Ok(ini)
    }

    /// Reads and parses one file; its path (as given) names it in messages.
    pub fn load(path: impl AsRef<Path>) -> Result<IniFile, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| -> ConfigError {
            ConfigErrorKind::Read {
                path: shown.clone(),
                reason: err.to_string(),
            }
            .into()
        })?;
        IniFile::parse(&text, &shown)
    }

    /// Loads several files in order, like repeated `--config-file`: values of
    /// later files override earlier ones (and all of them stay visible to
    /// [`IniFile::get_all`]).
    pub fn load_all<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<IniFile, ConfigError> {
        let mut ini = IniFile::new();
        for path in paths {
            ini.merge(IniFile::load(path)?);
        }
        Ok(ini)
    }

    /// Appends `later` on top of `self`: its values come after (and so
    /// override) the ones already present.
    pub fn merge(&mut self, later: IniFile) {
        for section in later.sections {
            let index = self.section_index_or_insert(&section.name, section.origin);
            self.sections[index].entries.extend(section.entries);
        }
        self.sources.extend(later.sources);
    }

    /// Applies `BATON__<SECTION>__<OPTION>=value` overrides from `vars`
    /// (other variables are ignored). `DEFAULT` names `[DEFAULT]`. Section and
    /// option are matched case-insensitively against names already present,
    /// otherwise lower-cased (the convention for oslo.config names). An
    /// override replaces every earlier occurrence of the option.
    ///
    /// Takes the variables explicitly so callers (and tests) decide what the
    /// environment is; pass `std::env::vars()` for the process environment.
    pub fn apply_env<K, V>(
        &mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        // Validate every name first so a malformed one leaves `self` untouched.
        let mut overrides: Vec<(String, String, String, String)> = Vec::new();
        for (var, value) in vars {
            let var = var.as_ref();
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let malformed = || -> ConfigError {
                ConfigErrorKind::Environment {
                    var: var.to_owned(),
                    reason: "expected BATON__<SECTION>__<OPTION>".to_owned(),
                }
                .into()
            };
            let (section, option) = rest.split_once("__").ok_or_else(malformed)?;
            if section.is_empty() || option.is_empty() || option.contains("__") {
                return Err(malformed());
            }
            overrides.push((
                var.to_owned(),
                section.to_owned(),
                option.to_owned(),
                value.as_ref().to_owned(),
            ));
        }
        for (var, section, option, value) in overrides {
            self.apply_one_env(&var, &section, &option, &value);
        }
        Ok(())
    }

    fn apply_one_env(&mut self, var: &str, section: &str, option: &str, value: &str) {
        let origin = Origin::Environment {
            var: var.to_owned(),
        };
        let section_name = if section.eq_ignore_ascii_case(DEFAULT_SECTION) {
            DEFAULT_SECTION.to_owned()
        } else {
            self.sections
                .iter()
                .find(|s| s.name != DEFAULT_SECTION && s.name.eq_ignore_ascii_case(section))
                .map(|s| s.name.clone())
                .unwrap_or_else(|| section.to_lowercase())
        };
        let index = self.section_index_or_insert(&section_name, origin.clone());
        let entries = &mut self.sections[index].entries;
        let key = entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(option))
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| option.to_lowercase());
        entries.retain(|(k, _)| *k != key);
        entries.push((
            key,
            Value {
                raw: value.to_owned(),
                origin,
            },
        ));
    }

    /// A copy holding only the named sections (compared like [`IniFile::section`]), for a
    /// reader that needs a few sections of a file written for a program with more options than
    /// it knows (`baton doctor` reading `[token]` of a real Keystone's keystone.conf).
    pub fn retain_sections(&self, names: &[&str]) -> IniFile {
        IniFile {
            sections: self
                .sections
                .iter()
                .filter(|s| names.iter().any(|n| same_section(&s.name, n)))
                .cloned()
                .collect(),
            sources: self.sources.clone(),
        }
    }

    /// Sources merged into this configuration, in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| &**s)
    }

    /// All sections in order of first appearance.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter()
    }

    /// The named section (`DEFAULT` exactly, others case-insensitively).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| same_section(&s.name, name))
    }

    /// The last value of `option` in `section` (no `[DEFAULT]` fallback, no
    /// substitution).
    pub fn get(&self, section: &str, option: &str) -> Option<&Value> {
        self.section(section)?.last(option)
    }

    /// Every value of `option` in `section`, in order (earlier files first).
    pub fn get_all(&self, section: &str, option: &str) -> Vec<&Value> {
        self.section(section)
            .map(|s| {
                s.entries
                    .iter()
                    .filter(|(k, _)| k == option)
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A handle for typed access to `option` in `section` only.
    pub fn option<'a>(&'a self, section: &'a str, option: &'a str) -> OptionRef<'a> {
        OptionRef {
            ini: self,
            section,
            option,
            value: self.get(section, option),
        }
    }

    /// Like [`IniFile::option`], but falls back to `[DEFAULT]` when `section`
    /// does not set the option (the explicit form of oslo's DEFAULT lookup).
    pub fn option_or_default<'a>(&'a self, section: &'a str, option: &'a str) -> OptionRef<'a> {
        match self.get(section, option) {
            Some(value) => OptionRef {
                ini: self,
                section,
                option,
                value: Some(value),
            },
            None => self.option(DEFAULT_SECTION, option),
        }
    }

    /// Shorthand for `self.option(section, option).string()`.
    pub fn get_str(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        self.option(section, option).string()
    }

    /// Shorthand for `self.option(section, option).bool()`.
    pub fn get_bool(&self, section: &str, option: &str) -> Result<Option<bool>, ConfigError> {
        self.option(section, option).bool()
    }

    /// Shorthand for `self.option(section, option).int(min, max)`.
    pub fn get_int(
        &self,
        section: &str,
        option: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        self.option(section, option).int(min, max)
    }

    /// Shorthand for `self.option(section, option).float()`.
    pub fn get_float(&self, section: &str, option: &str) -> Result<Option<f64>, ConfigError> {
        self.option(section, option).float()
    }

    /// Shorthand for `self.option(section, option).list()`.
    pub fn get_list(
        &self,
        section: &str,
        option: &str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        self.option(section, option).list()
    }

    /// Shorthand for `self.option(section, option).choice(choices)`.
    pub fn get_choice(
        &self,
        section: &str,
        option: &str,
        choices: &[&str],
    ) -> Result<Option<String>, ConfigError> {
        self.option(section, option).choice(choices)
    }

    fn section_index_or_insert(&mut self, name: &str, origin: Origin) -> usize {
        if let Some(index) = self
            .sections
            .iter()
            .position(|s| same_section(&s.name, name))
        {
            return index;
        }
        self.sections.push(Section {
            name: name.to_owned(),
            origin,
            entries: Vec::new(),
        });
        self.sections.len() - 1
    }

    fn flush(&mut self, current: Option<usize>, pending: Option<Pending>, name: &Arc<str>) {
        let (Some(index), Some(p)) = (current, pending) else {
            return;
        };
        self.sections[index].entries.push((
            p.key,
            Value {
                raw: p.lines.join("\n"),
                origin: Origin::File {
                    name: name.clone(),
                    line: p.line_no,
                },
            },
        ));
    }

    /// Expands `$name`, `${name}` and `${section.name}` in `text`, looked up
    /// from `section` then `[DEFAULT]`. On failure returns the reason.
    fn substitute(
        &self,
        section: &str,
        text: &str,
        stack: &mut Vec<(String, String)>,
    ) -> Result<String, String> {
        // oslo.config treats `\$` exactly like `$$`.
        let text = text.replace("\\$", "$$");
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < bytes.len() {
            let Some(offset) = text[i..].find('$') else {
                out.push_str(&text[i..]);
                break;
            };
            out.push_str(&text[i..i + offset]);
            let dollar = i + offset;
            let after = dollar + 1;
            match bytes.get(after) {
                Some(b'$') => {
                    out.push('$');
                    i = after + 1;
                }
                Some(b'{') => {
                    let close = text[after..].find('}').map(|c| after + c);
                    match close {
                        Some(close) if is_identifier(&text[after + 1..close]) => {
                            let name = &text[after + 1..close];
                            out.push_str(&self.resolve(section, name, stack)?);
                            i = close + 1;
                        }
                        _ => {
                            out.push('$');
                            i = after;
                        }
                    }
                }
                Some(&c) if c == b'_' || c.is_ascii_alphabetic() => {
                    let end = text[after..]
                        .find(|ch: char| !(ch == '_' || ch == '.' || ch.is_ascii_alphanumeric()))
                        .map_or(text.len(), |e| after + e);
                    let name = &text[after..end];
                    out.push_str(&self.resolve(section, name, stack)?);
                    i = end;
                }
                _ => {
                    out.push('$');
                    i = after;
                }
            }
        }
        Ok(out)
    }

    fn resolve(
        &self,
        section: &str,
        name: &str,
        stack: &mut Vec<(String, String)>,
    ) -> Result<String, String> {
        let found = match name.split_once('.') {
            Some((group, option)) => self.get(group, option).map(|v| (group, v)),
            None => self.get(section, name).map(|v| (section, v)).or_else(|| {
                self.get(DEFAULT_SECTION, name)
                    .map(|v| (DEFAULT_SECTION, v))
            }),
        };
        let Some((found_in, value)) = found else {
            return Err(format!(
                "unresolved substitution ${name} (write $$ for a literal $)"
            ));
        };
        let option = name.rsplit('.').next().unwrap_or(name);
        let key = (normalize_section(found_in), option.to_owned());
        if stack.contains(&key) {
            return Err(format!("substitution loop through ${name}"));
        }
        if stack.len() >= MAX_SUBSTITUTION_DEPTH {
            return Err("substitutions nested too deeply".to_owned());
        }
        stack.push(key);
        let result = self.substitute(found_in, &value.raw, stack);
        stack.pop();
        result
    }
}

/// oslo.config's substitution identifier: `[_a-z][._a-z0-9]*`, any case.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == '.' || c.is_ascii_alphanumeric())
}

/// Splits at the first `=` or `:`, trims both sides and removes one pair of
/// matching surrounding quotes from the value. `None` when there is neither.
fn split_key_value(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    let mut value = line[at + 1..].trim();
    if let Some(first) = value.chars().next() {
        if (first == '"' || first == '\'') && value.ends_with(first) {
            // Like Python's value[1:-1]: a lone quote becomes empty.
            value = if value.len() == 1 {
                ""
            } else {
                &value[1..value.len() - 1]
            };
        }
    }
    Some((key, value))
}

/// Typed access to one option, produced by [`IniFile::option`] or
/// [`IniFile::option_or_default`]. Every getter returns `Ok(None)` when the
/// option is unset, and substitutes `$option` references before converting.
#[derive(Debug, Clone, Copy)]
pub struct OptionRef<'a> {
    ini: &'a IniFile,
    section: &'a str,
    option: &'a str,
    value: Option<&'a Value>,
}

impl<'a> OptionRef<'a> {
    /// The section the value was found in (`DEFAULT` after a fallback).
    pub fn section(&self) -> &'a str {
        self.section
    }

    /// The option name.
    pub fn name(&self) -> &'a str {
        self.option
    }

    /// The raw value, if set.
    pub fn value(&self) -> Option<&'a Value> {
        self.value
    }

    /// Whether the option is set at all (an empty value counts as set).
    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }

    fn error(&self, value: &Value, reason: impl Into<String>) -> ConfigError {
        value.error(self.section, self.option, reason)
    }

    /// The raw value and its substituted text, or `None` when unset.
    fn text(&self) -> Result<Option<(&'a Value, String)>, ConfigError> {
        let Some(value) = self.value else {
            return Ok(None);
        };
        let mut stack = vec![(normalize_section(self.section), self.option.to_owned())];
        let text = self
            .ini
            .substitute(self.section, &value.raw, &mut stack)
            .map_err(|reason| self.error(value, reason))?;
        Ok(Some((value, text)))
    }

    /// The string value after `$option` substitution.
    pub fn string(&self) -> Result<Option<String>, ConfigError> {
        Ok(self.text()?.map(|(_, text)| text))
    }

    /// oslo.config's Boolean: `true`/`1`/`on`/`yes` and `false`/`0`/`off`/`no`,
    /// case-insensitive; anything else (including empty) is an error.
    pub fn bool(&self) -> Result<Option<bool>, ConfigError> {
        let Some((value, text)) = self.text()? else {
            return Ok(None);
        };
        match text.to_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(Some(true)),
            "false" | "0" | "off" | "no" => Ok(Some(false)),
            _ => Err(self.error(
                value,
                "not a boolean (use true/false, yes/no, on/off or 1/0)",
            )),
        }
    }

    /// oslo.config's Integer with optional inclusive bounds. As in oslo, an
    /// empty (or all-whitespace) value means unset and gives `Ok(None)`.
    pub fn int(&self, min: Option<i64>, max: Option<i64>) -> Result<Option<i64>, ConfigError> {
        let Some((value, text)) = self.text()? else {
            return Ok(None);
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let number: i64 = text.parse().map_err(|err: std::num::ParseIntError| {
            use std::num::IntErrorKind;
            match err.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                    self.error(value, "integer out of range")
                }
                _ => self.error(value, "not an integer"),
            }
        })?;
        if let Some(min) = min.filter(|min| number < *min) {
            return Err(self.error(value, format!("must be at least {min}")));
        }
        if let Some(max) = max.filter(|max| number > *max) {
            return Err(self.error(value, format!("must be at most {max}")));
        }
        Ok(Some(number))
    }

    /// oslo.config's Float; empty means unset.
    pub fn float(&self) -> Result<Option<f64>, ConfigError> {
        let Some((value, text)) = self.text()? else {
            return Ok(None);
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>()
            .map(Some)
            .map_err(|_| self.error(value, "not a number"))
    }

    /// A comma-separated list; items are trimmed and empty items dropped, so
    /// an empty value is an empty list.
    pub fn list(&self) -> Result<Option<Vec<String>>, ConfigError> {
        let Some((_, text)) = self.text()? else {
            return Ok(None);
        };
        Ok(Some(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }

    /// A string that must be one of `choices` (case-sensitive, as oslo's
    /// default).
    pub fn choice(&self, choices: &[&str]) -> Result<Option<String>, ConfigError> {
        let Some((value, text)) = self.text()? else {
            return Ok(None);
        };
        if choices.contains(&text.as_str()) {
            Ok(Some(text))
        } else {
            Err(self.error(value, format!("must be one of: {}", choices.join(", "))))
        }
    }

    /// Every occurrence (a multi-valued option), each substituted.
    pub fn all_strings(&self) -> Result<Vec<String>, ConfigError> {
        self.ini
            .get_all(self.section, self.option)
            .into_iter()
            .map(|v| {
                let mut stack = vec![(normalize_section(self.section), self.option.to_owned())];
                self.ini
                    .substitute(self.section, &v.raw, &mut stack)
                    .map_err(|reason| self.error(v, reason))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> IniFile {
        IniFile::parse(text, "test.conf").expect("parses")
    }

    fn raw<'a>(ini: &'a IniFile, section: &str, option: &str) -> &'a str {
        ini.get(section, option).expect("set").raw()
    }

    fn parse_err(text: &str) -> String {
        IniFile::parse(text, "test.conf").unwrap_err().to_string()
    }

    #[test]
    fn equals_and_colon_split_at_first_delimiter() {
        let ini = parse("[s]\na = 1\nb: 2\nurl = http://h:5000/v3\ntime: 10=5\n");
        assert_eq!(raw(&ini, "s", "a"), "1");
        assert_eq!(raw(&ini, "s", "b"), "2");
        assert_eq!(raw(&ini, "s", "url"), "http://h:5000/v3");
        assert_eq!(raw(&ini, "s", "time"), "10=5");
    }

    #[test]
    fn whitespace_is_stripped_and_empty_values_allowed() {
        let ini = parse("[s]\n  \nkey   =   spaced value  \t\nempty =\nalso_empty:\n");
        // A line that is only whitespace is blank, not a continuation.
        assert_eq!(raw(&ini, "s", "key"), "spaced value");
        assert_eq!(raw(&ini, "s", "empty"), "");
        assert_eq!(raw(&ini, "s", "also_empty"), "");
    }

    #[test]
    fn comments_are_full_line_only() {
        let ini =
            parse("# top\n; also\n[s]\n#key = 1\n;key = 2\nkey = a # not a comment ; nor this\n");
        assert_eq!(raw(&ini, "s", "key"), "a # not a comment ; nor this");
        assert_eq!(ini.get_all("s", "key").len(), 1);
    }

    #[test]
    fn matching_quotes_are_removed_once() {
        let ini = parse(
            "[s]\nd = \"double\"\ns = 'single'\nm = \"mismatch'\ni = a \"b\" c\nn = \"\"x\"\"\nlone = \"\nsp = \"  padded  \"\n",
        );
        assert_eq!(raw(&ini, "s", "d"), "double");
        assert_eq!(raw(&ini, "s", "s"), "single");
        assert_eq!(raw(&ini, "s", "m"), "\"mismatch'");
        assert_eq!(raw(&ini, "s", "i"), "a \"b\" c");
        assert_eq!(raw(&ini, "s", "n"), "\"x\"");
        assert_eq!(raw(&ini, "s", "lone"), "");
        assert_eq!(raw(&ini, "s", "sp"), "  padded  ");
    }

    #[test]
    fn continuation_lines_join_with_newline() {
        let ini = parse("[s]\nkey = first\n  second\n\t third  \n# ends here\nother = x\n");
        assert_eq!(raw(&ini, "s", "key"), "first\nsecond\nthird");
        assert_eq!(raw(&ini, "s", "other"), "x");
        // The value remembers the line of its key.
        assert_eq!(
            ini.get("s", "key").unwrap().origin(),
            &Origin::File {
                name: Arc::from("test.conf"),
                line: 2
            }
        );
    }

    #[test]
    fn blank_line_ends_a_multi_line_value() {
        let err = parse_err("[s]\nkey = a\n\n  b\n");
        assert_eq!(
            err,
            "test.conf:4: indented continuation line without an option to continue: \"  b\""
        );
    }

    #[test]
    fn repeated_keys_keep_all_and_get_returns_last() {
        let ini = parse("[s]\nk = 1\nk = 2\n[t]\nx = y\n[s]\nk = 3\n");
        let all: Vec<&str> = ini.get_all("s", "k").iter().map(|v| v.raw()).collect();
        assert_eq!(all, ["1", "2", "3"]);
        assert_eq!(raw(&ini, "s", "k"), "3");
        assert_eq!(ini.sections().count(), 2);
        assert_eq!(ini.section("s").unwrap().option_names(), ["k"]);
    }

    #[test]
    fn section_names_normalise_like_oslo() {
        let ini = parse("[DEFAULT]\na = 1\n[Token]\nb = 2\n[default]\nc = 3\n");
        assert_eq!(raw(&ini, "token", "b"), "2");
        assert_eq!(raw(&ini, "TOKEN", "b"), "2");
        assert_eq!(ini.section("token").unwrap().name(), "Token");
        // Only the exact spelling DEFAULT is the special section.
        assert!(ini.get(DEFAULT_SECTION, "c").is_none());
        assert_eq!(raw(&ini, "default", "c"), "3");
        // Option names are case-sensitive.
        assert!(ini.get("token", "B").is_none());
    }

    #[test]
    fn default_is_not_merged_without_asking() {
        let ini = parse("[DEFAULT]\ndebug = true\nboth = d\n[s]\nboth = s\n");
        assert!(ini.get("s", "debug").is_none());
        assert_eq!(ini.get_bool("s", "debug").unwrap(), None);
        let fallback = ini.option_or_default("s", "debug");
        assert_eq!(fallback.section(), DEFAULT_SECTION);
        assert_eq!(fallback.bool().unwrap(), Some(true));
        assert_eq!(
            ini.option_or_default("s", "both")
                .string()
                .unwrap()
                .as_deref(),
            Some("s")
        );
        assert_eq!(
            ini.option_or_default("s", "missing").string().unwrap(),
            None
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        assert_eq!(
            parse_err("key = value\n"),
            "test.conf:1: option appears before any [section] header: \"key = value\""
        );
        assert_eq!(
            parse_err("[s]\n\njust words\n"),
            "test.conf:3: expected \"key = value\" or \"key: value\": \"just words\""
        );
        assert_eq!(
            parse_err("[s]\n= v\n"),
            "test.conf:2: empty option name: \"= v\""
        );
        assert_eq!(
            parse_err("[token\n"),
            "test.conf:1: section header must end with \"]\": \"[token\""
        );
        assert_eq!(
            parse_err("[token] # comment\n"),
            "test.conf:1: section header must end with \"]\": \"[token] # comment\""
        );
        assert_eq!(parse_err("[]\n"), "test.conf:1: empty section name: \"[]\"");
        assert_eq!(
            parse_err("  indented = 1\n"),
            "test.conf:1: indented continuation line without an option to continue: \"  indented = 1\""
        );
        // After a section header there is nothing to continue either.
        assert_eq!(
            parse_err("[s]\n  a = 1\n"),
            "test.conf:2: indented continuation line without an option to continue: \"  a = 1\""
        );
    }

    #[test]
    fn crlf_and_bom_are_tolerated() {
        let ini = parse("\u{feff}[s]\r\nkey = v\r\n");
        assert_eq!(raw(&ini, "s", "key"), "v");
    }

    #[test]
    fn booleans_follow_oslo_types_boolean() {
        let ini = parse(
            "[s]\na = true\nb = YES\nc = On\nd = 1\ne = False\nf = no\ng = OFF\nh = 0\nt = t\ny = y\nempty =\n",
        );
        for key in ["a", "b", "c", "d"] {
            assert_eq!(ini.get_bool("s", key).unwrap(), Some(true), "{key}");
        }
        for key in ["e", "f", "g", "h"] {
            assert_eq!(ini.get_bool("s", key).unwrap(), Some(false), "{key}");
        }
        // oslo.config's Boolean (unlike oslo.utils' bool_from_string) rejects t/y.
        assert_eq!(
            ini.get_bool("s", "t").unwrap_err().to_string(),
            "test.conf:10: [s] t = \"t\": not a boolean (use true/false, yes/no, on/off or 1/0)"
        );
        assert!(ini.get_bool("s", "y").is_err());
        assert!(ini.get_bool("s", "empty").is_err());
        assert_eq!(ini.get_bool("s", "missing").unwrap(), None);
    }

    #[test]
    fn integers_with_bounds() {
        let ini = parse(
            "[token]\na = 42\nb = -7\nc = +3\nd =  \ne = abc\nf = 1.5\ng = 99999999999999999999\n",
        );
        assert_eq!(ini.get_int("token", "a", None, None).unwrap(), Some(42));
        assert_eq!(ini.get_int("token", "b", None, None).unwrap(), Some(-7));
        assert_eq!(ini.get_int("token", "c", None, None).unwrap(), Some(3));
        // oslo's Integer treats an empty value as unset.
        assert_eq!(ini.get_int("token", "d", Some(1), None).unwrap(), None);
        assert_eq!(
            ini.get_int("token", "e", None, None)
                .unwrap_err()
                .to_string(),
            "test.conf:6: [token] e = \"abc\": not an integer"
        );
        assert_eq!(
            ini.get_int("token", "f", None, None)
                .unwrap_err()
                .to_string(),
            "test.conf:7: [token] f = \"1.5\": not an integer"
        );
        assert_eq!(
            ini.get_int("token", "g", None, None)
                .unwrap_err()
                .to_string(),
            "test.conf:8: [token] g = \"99999999999999999999\": integer out of range"
        );
        assert_eq!(
            ini.get_int("token", "a", Some(50), None)
                .unwrap_err()
                .to_string(),
            "test.conf:2: [token] a = \"42\": must be at least 50"
        );
        assert_eq!(
            ini.get_int("token", "a", None, Some(10))
                .unwrap_err()
                .to_string(),
            "test.conf:2: [token] a = \"42\": must be at most 10"
        );
        assert_eq!(
            ini.get_int("token", "a", Some(42), Some(42)).unwrap(),
            Some(42)
        );
    }

    #[test]
    fn floats() {
        let ini = parse("[s]\na = 0.25\nb = 3\nc = 1e3\nd = nope\ne =\n");
        assert_eq!(ini.get_float("s", "a").unwrap(), Some(0.25));
        assert_eq!(ini.get_float("s", "b").unwrap(), Some(3.0));
        assert_eq!(ini.get_float("s", "c").unwrap(), Some(1000.0));
        assert_eq!(ini.get_float("s", "e").unwrap(), None);
        assert_eq!(
            ini.get_float("s", "d").unwrap_err().to_string(),
            "test.conf:5: [s] d = \"nope\": not a number"
        );
    }

    #[test]
    fn lists_strip_items_and_drop_empties() {
        let ini = parse("[s]\na = x, y ,z\nb =\nc = , x,,y ,\nd = one\n");
        assert_eq!(ini.get_list("s", "a").unwrap().unwrap(), ["x", "y", "z"]);
        assert_eq!(
            ini.get_list("s", "b").unwrap().unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(ini.get_list("s", "c").unwrap().unwrap(), ["x", "y"]);
        assert_eq!(ini.get_list("s", "d").unwrap().unwrap(), ["one"]);
        assert_eq!(ini.get_list("s", "missing").unwrap(), None);
    }

    #[test]
    fn choices_are_case_sensitive() {
        let ini = parse("[identity]\na = scrypt\nb = SCRYPT\n");
        let choices = ["bcrypt", "scrypt"];
        assert_eq!(
            ini.get_choice("identity", "a", &choices)
                .unwrap()
                .as_deref(),
            Some("scrypt")
        );
        assert_eq!(
            ini.get_choice("identity", "b", &choices)
                .unwrap_err()
                .to_string(),
            "test.conf:3: [identity] b = \"SCRYPT\": must be one of: bcrypt, scrypt"
        );
    }

    #[test]
    fn substitution_from_same_section_then_default() {
        let ini = parse(
            "[DEFAULT]\nstate_path = /var/lib/baton\nhost = h1\n[s]\nhost = h2\nlock = $state_path/lock\nurl = http://${host}:5000\nx = ${s.host}-${DEFAULT.host}\n",
        );
        assert_eq!(
            ini.get_str("s", "lock").unwrap().unwrap(),
            "/var/lib/baton/lock"
        );
        assert_eq!(ini.get_str("s", "url").unwrap().unwrap(), "http://h2:5000");
        assert_eq!(ini.get_str("s", "x").unwrap().unwrap(), "h2-h1");
        // The raw value is untouched.
        assert_eq!(raw(&ini, "s", "lock"), "$state_path/lock");
    }

    #[test]
    fn substitution_is_recursive_in_the_referenced_section() {
        let ini = parse(
            "[DEFAULT]\nbase = /srv\ndata = $base/data\n[s]\nbase = /other\nkeys = $data/keys\n",
        );
        // `$data` lives in DEFAULT, so its `$base` resolves in DEFAULT.
        assert_eq!(ini.get_str("s", "keys").unwrap().unwrap(), "/srv/data/keys");
    }

    #[test]
    fn dollar_escapes_and_non_identifiers() {
        let ini = parse(
            "[s]\na = pa$$word\nb = pa\\$word\nc = cost $5 and $ alone $\nd = ${not valid}\n",
        );
        assert_eq!(ini.get_str("s", "a").unwrap().unwrap(), "pa$word");
        assert_eq!(ini.get_str("s", "b").unwrap().unwrap(), "pa$word");
        assert_eq!(
            ini.get_str("s", "c").unwrap().unwrap(),
            "cost $5 and $ alone $"
        );
        assert_eq!(ini.get_str("s", "d").unwrap().unwrap(), "${not valid}");
    }

    #[test]
    fn substitution_errors() {
        let ini = parse("[s]\nname = user$x\npassword = pa$word\na = $b\nb = $a\nn = $a\n");
        assert_eq!(
            ini.get_str("s", "name").unwrap_err().to_string(),
            "test.conf:2: [s] name = \"user$x\": unresolved substitution $x (write $$ for a literal $)"
        );
        // Secret values stay hidden even in substitution errors.
        assert_eq!(
            ini.get_str("s", "password").unwrap_err().to_string(),
            "test.conf:3: [s] password = <redacted>: unresolved substitution $word (write $$ for a literal $)"
        );
        assert_eq!(
            ini.get_str("s", "a").unwrap_err().to_string(),
            "test.conf:4: [s] a = \"$b\": substitution loop through $a"
        );
        assert!(ini.get_str("s", "n").is_err());
        // Raw access never substitutes.
        assert_eq!(raw(&ini, "s", "password"), "pa$word");
    }

    #[test]
    fn substitution_applies_before_conversion() {
        let ini = parse("[DEFAULT]\nttl = 60\n[s]\ncache = $ttl\nflag = ${DEFAULT.ttl}\n");
        assert_eq!(ini.get_int("s", "cache", Some(1), None).unwrap(), Some(60));
        assert!(ini.get_bool("s", "flag").is_err());
    }

    #[test]
    fn retain_sections_keeps_only_the_named_ones() {
        let ini = parse("[DEFAULT]\nd = 1\n[Token]\nexpiration = 60\n[ldap]\nurl = x\n");
        let kept = ini.retain_sections(&["token", "fernet_tokens"]);
        let names: Vec<&str> = kept.sections().map(Section::name).collect();
        assert_eq!(names, ["Token"]);
        assert_eq!(raw(&kept, "token", "expiration"), "60");
        assert_eq!(
            kept.get("token", "expiration")
                .unwrap()
                .origin()
                .to_string(),
            "test.conf:4"
        );
        assert!(kept.get(DEFAULT_SECTION, "d").is_none());
    }

    #[test]
    fn merge_appends_later_values() {
        let mut a = parse("[DEFAULT]\ndebug = false\n[token]\nexpiration = 3600\nm = 1\n");
        let b = IniFile::parse(
            "[Token]\nexpiration = 7200\nm = 2\n[cache]\nenabled = true\n",
            "b.conf",
        )
        .unwrap();
        a.merge(b);
        assert_eq!(raw(&a, "token", "expiration"), "7200");
        assert_eq!(
            a.get("token", "expiration").unwrap().origin().to_string(),
            "b.conf:2"
        );
        let all: Vec<&str> = a.get_all("token", "m").iter().map(|v| v.raw()).collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(raw(&a, "DEFAULT", "debug"), "false");
        assert_eq!(a.sources().collect::<Vec<_>>(), ["test.conf", "b.conf"]);
        let names: Vec<&str> = a.sections().map(Section::name).collect();
        assert_eq!(names, ["DEFAULT", "token", "cache"]);
    }

    #[test]
    fn env_overrides_replace_values() {
        let mut ini =
            parse("[DEFAULT]\ndebug = false\n[Token]\nexpiration = 3600\nexpiration = 4000\n");
        ini.apply_env([
            ("PATH", "/usr/bin"),
            ("BATON_TOKEN__X", "not ours"),
            ("BATON__TOKEN__EXPIRATION", "60"),
            ("BATON__DEFAULT__DEBUG", "true"),
            ("BATON__BATON__BIND", "0.0.0.0:5000"),
        ])
        .unwrap();
        let values = ini.get_all("token", "expiration");
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].raw(), "60");
        assert_eq!(
            values[0].origin().to_string(),
            "environment BATON__TOKEN__EXPIRATION"
        );
        assert_eq!(ini.get_bool(DEFAULT_SECTION, "debug").unwrap(), Some(true));
        assert_eq!(raw(&ini, "baton", "bind"), "0.0.0.0:5000");
        assert_eq!(ini.section("baton").unwrap().name(), "baton");
        assert_eq!(
            ini.get_int("token", "expiration", Some(100), None).unwrap_err().to_string(),
            "environment BATON__TOKEN__EXPIRATION: [token] expiration = \"60\": must be at least 100"
        );
    }

    #[test]
    fn env_override_keeps_existing_option_spelling_and_does_not_unquote() {
        let mut ini = parse("[s]\nMixedCase = 1\n");
        ini.apply_env([("BATON__S__MIXEDCASE", "\"quoted\"")])
            .unwrap();
        assert_eq!(raw(&ini, "s", "MixedCase"), "\"quoted\"");
    }

    #[test]
    fn malformed_env_names_are_errors_and_change_nothing() {
        for var in [
            "BATON__TOKEN",
            "BATON____X",
            "BATON__TOKEN__",
            "BATON__A__B__C",
        ] {
            let mut ini = parse("[token]\nexpiration = 1\n");
            let before = ini.clone();
            let err = ini
                .apply_env([("BATON__TOKEN__EXPIRATION", "5"), (var, "v")])
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment {var}: expected BATON__<SECTION>__<OPTION>")
            );
            assert_eq!(ini, before);
        }
    }

    #[test]
    fn multi_valued_getter_substitutes_each() {
        let ini = parse("[DEFAULT]\nd = x\n[s]\nm = $d-1\nm = $d-2\n");
        assert_eq!(ini.option("s", "m").all_strings().unwrap(), ["x-1", "x-2"]);
    }

    #[test]
    fn load_errors_name_the_path() {
        let err = IniFile::load("/nonexistent/baton/keystone.conf").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/nonexistent/baton/keystone.conf: cannot read configuration file: "),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
