//! The `wowchat-gateway` binary as an operator runs it. (Also what makes
//! `cargo test --workspace` build it for the fleet test, which runs it as a
//! process of its own.)

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn openapi_prints_the_document_docs_holds() {
    let output = Command::new(env!("CARGO_BIN_EXE_wowchat-gateway"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(printed["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        printed, checked_in,
        "cargo run -p wowchat-gateway -- openapi > docs/openapi.json"
    );
}
