//! What the test kit's own servers (PgBouncer, Postgres and RabbitMQ
//! clusters) need of the machine: a free port, and running a program as
//! the service account it insists on when the tests run as root.

use std::{path::Path, process::Command};

/// A TCP port of 127.0.0.1 free as of now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// `program`, run as `user` with `home` as its home when the tests run as
/// root (Postgres and PgBouncer refuse root; RabbitMQ's Erlang cookie is
/// its account's); as the tests' own user otherwise.
pub(crate) fn as_account(user: &str, home: &str, program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", user, "--", "env"])
            .arg(format!("HOME={home}"))
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}
