//! Settings from the environment, as a platform team expects of them:
//! every secret may come from a file (`NAME_FILE`, as the official Postgres
//! and RabbitMQ images do), an invalid value names its variable (clap names
//! only the flag), a `WOWCHAT_*` variable no setting reads (a typo) is
//! reported, and a production switch refuses developer defaults.

use std::ffi::OsString;

use anyhow::Context;

/// Where the process runs: `production` refuses what only a developer's
/// machine should have (generated keys, `guest:guest`, no gateway key, a
/// localhost link in emails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl Environment {
    /// Refuses `what` in production, naming the setting to change.
    pub fn refuse(self, developer_default: bool, what: &str) -> anyhow::Result<()> {
        if self == Environment::Production && developer_default {
            anyhow::bail!("WOWCHAT_ENVIRONMENT=production refuses {what}");
        }
        Ok(())
    }
}

/// The flag one program reads its [`EnvironmentArgs`] from; the variable is
/// `WOWCHAT_ENVIRONMENT` for every program, so one setting covers a whole
/// installation.
pub trait EnvironmentFlag {
    /// The flag, without its dashes.
    const FLAG: &'static str = "environment";
}

// The environment setting every program declares, flattened into its
// settings (`#[command(flatten)] environment: EnvironmentArgs<F>`). A plain
// comment, not a doc comment: clap would make it the `about` of the command
// it lands in.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvironmentArgs<F: EnvironmentFlag> {
    /// `development` or `production`: production refuses developer defaults
    /// (generated JWT keys, `guest:guest`, no gateway key, a localhost link
    /// in emails: what each program refuses, docs/configuration.md says).
    #[arg(
        id = "environment",
        long = F::FLAG,
        value_name = "ENVIRONMENT",
        env = "WOWCHAT_ENVIRONMENT",
        value_enum,
        ignore_case = true,
        default_value = "development"
    )]
    pub environment: Environment,

    #[arg(skip)]
    flag: std::marker::PhantomData<fn() -> F>,
}

impl<F: EnvironmentFlag> EnvironmentArgs<F> {
    /// Refuses `what` in production, naming the setting to change.
    pub fn refuse(&self, developer_default: bool, what: &str) -> anyhow::Result<()> {
        self.environment.refuse(developer_default, what)
    }
}

/// `guest:guest@`: RabbitMQ's default user, which it refuses beyond
/// localhost anyway.
pub fn is_guest_amqp_url(url: &str) -> bool {
    url.contains("//guest:guest@")
}

/// Every setting that holds a secret, each also readable from `NAME_FILE`.
/// One list for the three programs: a file for a setting a program does
/// not read is read and unused.
pub const SECRETS: &[&str] = &[
    "WOWCHAT_DATABASE_URL",
    "WOWCHAT_DATABASE_DIRECT_URL",
    "WOWCHAT_MAILER_DATABASE_URL",
    "WOWCHAT_MAILER_DATABASE_DIRECT_URL",
    "WOWCHAT_AMQP_URL",
    "WOWCHAT_SMTP_URL",
    "WOWCHAT_GATEWAY_KEY",
    "WOWCHAT_MAIL_TOKEN_KEYS",
    "WOWCHAT_OWNER_PASSWORD",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
];

/// Reads each `NAME_FILE` of `secrets` into `NAME` (a trailing newline
/// dropped). Both set is an error: which one would win is a guess.
///
/// Call it first thing in `main`, before any other thread exists: it sets
/// environment variables.
pub fn read_secret_files(secrets: &[&str]) -> anyhow::Result<()> {
    for name in secrets {
        let file_variable = format!("{name}_FILE");
        let Some(path) = std::env::var_os(&file_variable) else {
            continue;
        };
        if std::env::var_os(name).is_some() {
            anyhow::bail!("{name} and {file_variable} are both set: keep one");
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{file_variable}: reading {}", path.to_string_lossy()))?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        // SAFETY: called before the runtime starts, while this is the
        // process's only thread, so nothing reads the environment meanwhile.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(name, value)
        };
    }
    Ok(())
}

/// Parses the command line and the environment into `C`. On an invalid
/// value that came from a variable, the message names the variable. Returns
/// the warnings to log once logging is set up: the `WOWCHAT_*` variables
/// that neither `C` nor `also` read.
pub fn parse<C: clap::Parser>(also: &[clap::Command], secrets: &[&str]) -> (C, Vec<String>) {
    let command = C::command();
    let mut known = Vec::new();
    env_names(&command, &mut known);
    for other in also {
        env_names(other, &mut known);
    }
    known.extend(secrets.iter().map(|name| format!("{name}_FILE")));
    let parsed = match C::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            if let Some(variable) = variable_of(&command, &error) {
                eprintln!(
                    "error: {variable} has an invalid value (the same setting as its flag, below)"
                );
            }
            error.exit();
        }
    };
    let warnings = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("WOWCHAT_") && !known.contains(name))
        .map(|name| {
            let closest = known
                .iter()
                .min_by_key(|candidate| strsim::levenshtein(candidate, &name))
                .filter(|candidate| strsim::levenshtein(candidate, &name) <= 3);
            match closest {
                Some(closest) => format!("{name} is not a setting (did you mean {closest}?)"),
                None => format!("{name} is not a setting of this program"),
            }
        })
        .collect();
    (parsed, warnings)
}

/// The settings `A` as the program `name` reads them when given no flag:
/// each setting's default, or its variable where one is set. What a
/// program's `Settings::defaults()` returns, for tests and for the settings
/// one program builds for another (`standalone`).
pub fn defaults<A: clap::Args + clap::FromArgMatches>(name: &'static str) -> A {
    #[derive(clap::Parser)]
    struct Only<A: clap::Args + clap::FromArgMatches> {
        #[command(flatten)]
        settings: A,
    }
    <Only<A> as clap::Parser>::parse_from([name]).settings
}

/// Panics unless the settings `A` of the program `name` give every setting
/// its own variable, flag and id, the flattened shared groups' included: a
/// test each program's settings run.
pub fn assert_distinct_settings<A: clap::Args>(name: &'static str) {
    let command = A::augment_args(clap::Command::new(name));
    let mut variables: Vec<_> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .collect();
    let declared = variables.len();
    variables.sort();
    variables.dedup();
    assert_eq!(
        variables.len(),
        declared,
        "two settings of {name} share a variable"
    );
    // Ids and flags.
    command.debug_assert();
}

/// Every environment variable `command` and its subcommands read.
fn env_names(command: &clap::Command, names: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if let Some(name) = arg.get_env().and_then(|name| name.to_str()) {
            names.push(name.to_owned());
        }
    }
    for sub in command.get_subcommands() {
        env_names(sub, names);
    }
}

/// The variable behind the argument an error is about, when the value came
/// from it rather than from the command line.
fn variable_of(command: &clap::Command, error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(invalid) = error.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let flag = invalid.split([' ', '=']).next()?.to_owned();
    let on_command_line = std::env::args_os()
        .map(OsString::into_string)
        .filter_map(Result::ok)
        .any(|arg| arg == flag || arg.starts_with(&format!("{flag}=")));
    if on_command_line {
        return None;
    }
    let mut commands = vec![command];
    while let Some(command) = commands.pop() {
        for arg in command.get_arguments() {
            if arg
                .get_long()
                .is_some_and(|long| flag == format!("--{long}"))
            {
                return arg
                    .get_env()
                    .and_then(|name| name.to_str())
                    .map(str::to_owned);
            }
        }
        commands.extend(command.get_subcommands());
    }
    None
}

/// A count or a duration where zero makes no sense: refused, not raised.
pub fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
    T::Err: std::fmt::Display,
{
    let value: T = text.trim().parse().map_err(|e: T::Err| e.to_string())?;
    if value < T::from(1) {
        return Err("must be at least 1".into());
    }
    Ok(value)
}
