//! The `wowchat-mailer` binary as an operator meets it. (Its being built
//! for tests also lets the server's fleet test run it as a process.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn help_names_every_database_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_wowchat-mailer"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "WOWCHAT_MAILER_DATABASE_URL",
        "WOWCHAT_MAILER_DATABASE_DIRECT_URL",
        "WOWCHAT_MAILER_DATABASE_STATEMENT_CACHE",
    ] {
        assert!(help.contains(variable), "{variable} in {help}");
    }
}
