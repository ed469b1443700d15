//! The README states the defaults the code has. The code's side is each binary's
//! `--help`, whose `[default: …]` notes are generated from the resolved `Default`
//! settings (`ferry_cli::help`; its unit tests tie every setting to its flag).
//! For `ferry-server` and `ferry-gateway`, every flag the binary has must have a
//! row in its README settings table (`| --flag | FERRY_X | default | meaning |`),
//! with the same environment variable and the same default; a row naming a flag
//! the binary does not have fails too. `ferry up` and `ferry send` state the same
//! defaults as the README.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::harness::help::{HelpFlag, help_flags};

/// One row of a README settings table.
#[derive(Debug, Clone)]
struct Row {
    /// The row as written, for messages.
    line: String,
    env: Vec<String>,
    default: String,
}

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).expect("README.md")
}

/// The rows of the settings table under the heading `### `binary``, by flag (a
/// row naming two flags, `--tls-cert`, `--tls-key`, counts for both).
fn table(readme: &str, binary: &str) -> BTreeMap<String, Row> {
    let heading = format!("### `{binary}`");
    let section = readme
        .split_once(&heading)
        .unwrap_or_else(|| panic!("the README has no {heading} section"))
        .1;
    let mut rows = BTreeMap::new();
    for line in section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cells.len() >= 4, "README row with too few cells: {line}");
        let flags = words(cells[0], "--");
        assert!(!flags.is_empty(), "README row names no flag: {line}");
        for flag in flags {
            let row = Row {
                line: line.to_owned(),
                env: words(cells[1], "FERRY_"),
                default: cells[2].to_owned(),
            };
            assert!(
                rows.insert(flag.clone(), row).is_none(),
                "two README rows for {flag} in the {binary} table"
            );
        }
    }
    assert!(!rows.is_empty(), "the {binary} table has no rows");
    rows
}

/// The backquoted words of `cell` that start with `prefix`.
fn words(cell: &str, prefix: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// A README default as the help writes it: `64 MiB` is `67108864`, `30 (s)` is
/// `30`, `1,024` is `1024`, `off`/`on` are `false`/`true`, `./dir` is `dir`.
fn as_help_writes_it(cell: &str) -> String {
    let text = cell.replace('`', "");
    let text = text.trim();
    let number = |n: &str| n.replace(',', "").parse::<u64>().ok();
    if let Some((n, unit)) = text.split_once(' ')
        && let Some(n) = number(n)
    {
        let scaled = match unit {
            "KiB" => Some(n << 10),
            "MiB" => Some(n << 20),
            "GiB" => Some(n << 30),
            "(s)" => Some(n),
            _ => None,
        };
        if let Some(scaled) = scaled {
            return scaled.to_string();
        }
    }
    if let Some(n) = number(text) {
        return n.to_string();
    }
    match text {
        "off" => "false".to_owned(),
        "on" => "true".to_owned(),
        _ => text.trim_start_matches("./").to_owned(),
    }
}

/// Whether a README default names no value (for a setting that has none by
/// default): empty, `off`, `none`, `unlimited`, or words saying what happens.
fn names_no_value(cell: &str) -> bool {
    !cell.chars().any(|c| c.is_ascii_digit())
        && !["true", "false", "on"].contains(&cell.replace('`', "").trim())
}

/// Checks one README default against the default the help states for `flag`.
fn check_default(context: &str, flag: &HelpFlag, row: &Row) -> Option<String> {
    match &flag.default {
        Some(code) if as_help_writes_it(&row.default) != *code => Some(format!(
            "{context}: the README row `{}` says the default of {} is {:?}, the code's is {code:?}",
            row.line, flag.flag, row.default
        )),
        None if !names_no_value(&row.default) => Some(format!(
            "{context}: the README row `{}` gives {} the default {:?}, the code has none",
            row.line, flag.flag, row.default
        )),
        _ => None,
    }
}

/// Compares `binary --help` with its README table; returns every disagreement.
fn disagreements(readme: &str, binary: &str) -> Vec<String> {
    let rows = table(readme, binary);
    let flags: Vec<HelpFlag> = help_flags(binary, &[])
        .into_iter()
        .filter(|flag| flag.flag != "--help" && flag.flag != "--version")
        .collect();
    let mut wrong = Vec::new();
    for flag in &flags {
        let Some(row) = rows.get(&flag.flag) else {
            wrong.push(format!(
                "{binary} {} (env {:?}, default {:?}) has no row in the README's `{binary}` table",
                flag.flag, flag.env, flag.default
            ));
            continue;
        };
        let env: Vec<String> = flag.env.iter().cloned().collect();
        if !row.env.iter().eq(env.iter()) && !row.env.contains(&env.concat()) {
            wrong.push(format!(
                "{binary}: the README row `{}` names {:?} as the variable of {}, the binary reads {env:?}",
                row.line, row.env, flag.flag
            ));
        }
        wrong.extend(check_default(binary, flag, row));
    }
    for (name, row) in &rows {
        if !flags.iter().any(|flag| flag.flag == *name) {
            wrong.push(format!(
                "{binary}: the README row `{}` names {name}, which {binary} does not have",
                row.line
            ));
        }
    }
    wrong
}

#[test]
fn the_readme_settings_tables_state_every_flag_and_default_of_the_binaries() {
    let readme = readme();
    let wrong: Vec<String> = ["ferry-server", "ferry-gateway"]
        .iter()
        .flat_map(|binary| disagreements(&readme, binary))
        .collect();
    assert!(
        wrong.is_empty(),
        "README and code disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn ferry_up_and_ferry_send_state_the_readme_defaults() {
    let readme = readme();
    let server = table(&readme, "ferry-server");
    let gateway = table(&readme, "ferry-gateway");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for flag in help_flags("ferry", &["up"]) {
        let row = match flag.flag.as_str() {
            "--gateway-listen" => gateway.get("--listen"),
            "--gateway-token" => gateway.get("--token"),
            other => server.get(other),
        };
        if let Some(row) = row {
            checked += 1;
            wrong.extend(check_default("ferry up", &flag, row));
        }
    }
    assert!(
        checked > 20,
        "only {checked} flags of `ferry up` were found in the README"
    );

    // `ferry send --server`: the README says its default where it introduces it.
    let send = help_flags("ferry", &["send"]);
    let server_flag = send.iter().find(|flag| flag.flag == "--server").unwrap();
    let default = server_flag
        .default
        .as_deref()
        .expect("--server has a default");
    let line = readme
        .lines()
        .find(|line| line.contains("`--server HOST:PORT`"))
        .expect("the README introduces `ferry send --server HOST:PORT`");
    let next = readme
        .lines()
        .skip_while(|l| *l != line)
        .nth(1)
        .unwrap_or_default();
    if !format!("{line} {next}").contains(&format!("default `{default}`")) {
        wrong.push(format!(
            "ferry send: the README says `{line} {next}`, the default is {default}"
        ));
    }
    assert!(
        wrong.is_empty(),
        "README and code disagree:\n{}",
        wrong.join("\n")
    );
}
