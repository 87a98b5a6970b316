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
}
