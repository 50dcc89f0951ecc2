//! Entry point for the `ini` fuzz target in `fuzz/` and for replaying its corpus in the normal
//! test suite (`tests/config`). Not part of the crate's API.

use crate::identity::IdentityConfig;
use crate::ini::{IniFile, Section};

/// keystone.conf text: parsing never panics; every option a section lists is found by
/// [`IniFile::get`]; parsing is deterministic; the typed readers (every `[section] option`
/// Baton knows, durations included) take whatever parsed, refusing with an error, never a
/// panic.
pub fn ini(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(ini) = IniFile::parse(&text, "fuzz.conf") else {
        return;
    };
    for section in ini.sections() {
        for (option, value) in section.entries() {
            let found = ini.get(section.name(), option);
            assert!(
                found.is_some(),
                "[{}] {option} is listed but not found",
                section.name()
            );
            let _ = value.raw();
        }
    }
    let again = IniFile::parse(&text, "fuzz.conf").expect("parsed once, parses again");
    assert_eq!(again, ini);
    let _ = IdentityConfig::from_ini_with_ignored(&ini);
    for (_, text) in ini.sections().flat_map(Section::entries) {
        let _ = crate::duration::parse_duration(text.raw());
    }
}
