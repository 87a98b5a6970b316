//! Free-text fields: bounded length, no control characters.

/// Trims `input` and checks it is 1..=`max` characters with no control characters.
pub fn required_text(input: &str, max: usize) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    optional_text(trimmed, max)
}

/// Like [`required_text`] but accepts an empty value; newlines and tabs are allowed.
pub fn optional_text(input: &str, max: usize) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// Most characters of an invitation's personal message.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Most lines of an invitation's personal message.
pub const MAX_MESSAGE_LINES: usize = 10;

/// An invitation's personal message: optional, at most 500 characters on at
/// most 10 lines. Anyone who may invite can send it, in a WowChat email, to
/// any address, so it is held to the length of a note, not of a letter.
pub fn personal_message(input: &str) -> Result<String, String> {
    let message = optional_text(input, MAX_MESSAGE_CHARS)?;
    if message.lines().count() > MAX_MESSAGE_LINES {
        return Err(format!("must be at most {MAX_MESSAGE_LINES} lines"));
    }
    Ok(message)
}

/// A display name: 1 to 100 characters on one line.
pub fn display_name(input: &str) -> Result<String, String> {
    let name = required_text(input, 100)?;
    if name.contains(['\n', '\r', '\t']) {
        return Err("must be on one line".into());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(display_name("  Ann Lee ").as_deref(), Ok("Ann Lee"));
        assert!(display_name("   ").is_err());
        assert!(display_name(&"x".repeat(101)).is_err());
        assert!(display_name("a\u{0}b").is_err());
        assert!(display_name("two\nlines").is_err());
    }

    #[test]
    fn a_personal_message_is_a_note_of_at_most_500_characters_and_10_lines() {
        assert_eq!(personal_message("  ").as_deref(), Ok(""));
        assert!(personal_message(&"m".repeat(500)).is_ok());
        assert!(personal_message(&"m".repeat(501)).is_err());
        let ten = ["line"; 10].join("\n");
        assert_eq!(personal_message(&ten).as_deref(), Ok(ten.as_str()));
        assert!(personal_message(&format!("{ten}\nmore")).is_err());
        assert!(personal_message("bell\u{7}").is_err());
    }
}
