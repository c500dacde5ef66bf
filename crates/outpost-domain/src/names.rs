//! The one rule for login names, and the check of short labels people type (device names,
//! unit ids of accounts), shared by the server's accounts, the console audit events
//! ([`crate::wire::ConsoleAuditEvent::validate`]) and the console's audit outbox (fresh
//! review S6, S12: before this the server accepted `王伟` and `ann@pd` while the audit
//! events refused them, so such a person's console events lost their name).
//!
//! # Login names ([`check_login_name`])
//! 1–[`MAX_LOGIN_NAME_CHARS`] characters, each a letter or digit of any script
//! (`char::is_alphanumeric`: `王伟`, `Zoë`, `ann.lee`) or one of `.` `-` `_` `@`; not
//! starting with `-` (it would read as a command-line flag: `user add -- -rf`); Latin letters
//! not mixed with Greek or Cyrillic letters in one name (`аdministrator` with a Cyrillic `а`
//! beside `administrator`). Control, format and bidirectional characters (U+202E, U+200B,
//! U+FEFF…) and non-characters (U+FFFF…) are not letters, so they are refused too.
//!
//! # Uniqueness ([`login_name_key`])
//! Two names are the same account name when their keys are equal: NFKC (Unicode
//! compatibility normalization: full-width `ｃｏｍｍａｎｄｅｒ` is `commander`) then lowercase.
//! The server refuses a new account whose key equals an existing one's (`Commander` beside
//! `commander`).
//!
//! # Labels ([`check_label`])
//! A device name or an account's unit id: trimmed, 1–max characters, no control character,
//! no invisible format or bidirectional-override character ([`is_hidden_char`]) and no
//! non-character — what a person reads in `device list` is what was stored (fresh review S12:
//! `"laptop \u{202E}gnp.exe"` showed reversed).

use unicode_normalization::UnicodeNormalization;

/// The most characters of a login name.
pub const MAX_LOGIN_NAME_CHARS: usize = 64;

/// The rule in words, for error messages.
pub const LOGIN_NAME_RULE: &str = "1–64 letters (any script), digits, '.', '-', '_', '@'; \
                                   not starting with '-'; Latin not mixed with Greek or \
                                   Cyrillic";

/// Checks a login name against the rule of the module doc.
///
/// # Errors
/// One line: the name (quoted, escapes shown) and what is wrong, e.g. `"ann lee" is not a
/// login name: ' ' is not allowed (1–64 letters …)`.
pub fn check_login_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    let fail = |why: String| {
        Err(format!(
            "{name:?} is not a login name: {why} ({LOGIN_NAME_RULE})"
        ))
    };
    if n == 0 {
        return fail("it is empty".into());
    }
    if n > MAX_LOGIN_NAME_CHARS {
        return fail(format!("{n} characters"));
    }
    if name.starts_with('-') {
        return fail("it starts with '-'".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')))
    {
        return fail(format!("{c:?} (U+{:04X}) is not allowed", u32::from(c)));
    }
    let latin = name.chars().any(|c| c.is_ascii_alphabetic());
    let greek_or_cyrillic = name
        .chars()
        .any(|c| matches!(c, '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}' | '\u{1F00}'..='\u{1FFF}'));
    if latin && greek_or_cyrillic {
        return fail("Latin letters mixed with Greek or Cyrillic ones (look-alike names)".into());
    }
    Ok(())
}

/// Whether `name` passes [`check_login_name`].
pub fn is_login_name(name: &str) -> bool {
    check_login_name(name).is_ok()
}

/// The key under which login names are unique: NFKC, then lowercase, then NFKC again (a
/// lowercase mapping can leave a string unnormalized). `Commander`, `COMMANDER` and
/// full-width `ｃｏｍｍａｎｄｅｒ` have the key `commander`.
pub fn login_name_key(name: &str) -> String {
    let lower: String = name.nfkc().collect::<String>().to_lowercase();
    lower.nfkc().collect()
}

/// True for a character that is invisible or changes how the text around it is shown:
/// format characters used for bidirectional control (U+061C, U+200E/F, U+202A–U+202E,
/// U+2066–U+2069), zero-width ones (U+200B–U+200D, U+2060–U+2064, U+FEFF), the soft hyphen,
/// U+180E, interlinear annotation (U+FFF9–U+FFFB), tags (U+E0000–U+E007F), and the
/// non-characters (U+FDD0–U+FDEF and every U+xxFFFE/U+xxFFFF).
pub fn is_hidden_char(c: char) -> bool {
    let u = u32::from(c);
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{FDD0}'..='\u{FDEF}')
        || u & 0xFFFE == 0xFFFE
}

/// Checks a short label a person typed (a device name, an account's unit id): `field` names
/// it in the error. The label is taken trimmed; it must have 1..=`max_chars` characters,
/// no control character and no [`is_hidden_char`].
///
/// # Errors
/// `FIELD: why`, naming the offending character by its code point.
pub fn check_label(field: &str, label: &str, max_chars: usize) -> Result<(), String> {
    let t = label.trim();
    let n = t.chars().count();
    if n == 0 {
        return Err(format!("{field}: empty"));
    }
    if n > max_chars {
        return Err(format!("{field}: {n} characters, at most {max_chars}"));
    }
    if let Some(c) = t.chars().find(|c| c.is_control() || is_hidden_char(*c)) {
        return Err(format!(
            "{field}: U+{:04X} is not allowed (control, invisible or bidirectional \
             formatting characters and non-characters are refused)",
            u32::from(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_of_any_script_and_the_usual_punctuation_pass() {
        for ok in [
            "commander",
            "王伟",
            "ann@pd",
            "ann.lee",
            "o_neil-2",
            "Zoë",
            "Иван",
            "a",
        ] {
            assert_eq!(check_login_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn bad_login_names_are_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("-rf", "starts with '-'"),
            ("ann lee", "' ' (U+0020)"),
            ("evil\u{202E}gnp", "U+202E"),
            ("zero\u{200B}width", "U+200B"),
            ("non\u{FFFF}char", "U+FFFF"),
            ("tab\tname", "U+0009"),
            ("\u{0430}dministrator", "mixed with Greek or Cyrillic"),
        ];
        for (name, why) in cases {
            let e = check_login_name(name).expect_err(name);
            assert!(e.contains(why), "{name:?}: {e}");
            assert!(e.contains("not a login name"), "{e}");
        }
        let long = "a".repeat(65);
        assert!(
            check_login_name(&long)
                .expect_err("refused")
                .contains("65 characters")
        );
        assert_eq!(check_login_name(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn keys_fold_case_and_compatibility_forms() {
        assert_eq!(login_name_key("Commander"), "commander");
        assert_eq!(login_name_key("COMMANDER"), login_name_key("commander"));
        assert_eq!(login_name_key("ｃｏｍｍａｎｄｅｒ"), "commander");
        assert_eq!(login_name_key("王伟"), "王伟");
        assert_ne!(login_name_key("ann"), login_name_key("anne"));
    }

    #[test]
    fn labels_refuse_control_bidi_and_non_characters() {
        assert_eq!(check_label("device_name", " Car 7 laptop ", 100), Ok(()));
        assert_eq!(check_label("device_name", "王伟的电脑", 100), Ok(()));
        for (bad, code) in [
            ("laptop \u{202E}gnp.exe", "U+202E"),
            ("a\u{200B}b", "U+200B"),
            ("x \u{FFFF}", "U+FFFF"),
            ("u-01\n", "ok-trimmed"),
            ("u\n01", "U+000A"),
            ("\u{1FFFE}", "U+1FFFE"),
        ] {
            let r = check_label("device_name", bad, 100);
            if code == "ok-trimmed" {
                assert_eq!(r, Ok(()), "{bad:?}");
            } else {
                let e = r.expect_err(bad);
                assert!(e.starts_with("device_name: "), "{e}");
                assert!(e.contains(code), "{bad:?}: {e}");
            }
        }
        assert!(
            check_label("unit_id", "   ", 64)
                .expect_err("refused")
                .contains("empty")
        );
        assert!(
            check_label("unit_id", &"u".repeat(65), 64)
                .expect_err("refused")
                .contains("65")
        );
    }
}
