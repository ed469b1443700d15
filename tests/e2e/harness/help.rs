//! What a binary's `--help` says about each of its flags: the flag, the
//! environment variable it reads and the default it states.

use std::process::Command;

use super::bin;

/// One flag as `--help` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpFlag {
    /// `--listen`.
    pub flag: String,
    /// `FERRY_LISTEN`, from `[env: FERRY_LISTEN=]`.
    pub env: Option<String>,
    /// The text of `[default: …]`, if the help states one.
    pub default: Option<String>,
}

/// Runs `binary args… --help` and reads every flag it lists (`--help` and
/// `--version` included).
pub fn help_flags(binary: &str, args: &[&str]) -> Vec<HelpFlag> {
    let output = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .expect("--help runs");
    assert!(output.status.success(), "{binary} {args:?} --help failed");
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    // An entry starts at a line whose first word is a flag; the lines after it
    // that are not a flag continue its description.
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        let word = line.trim_start();
        if word.starts_with("--") || (word.starts_with('-') && word.get(2..4) == Some(", ")) {
            entries.push(word.to_owned());
        } else if let Some(entry) = entries.last_mut()
            && !line.trim().is_empty()
        {
            entry.push(' ');
            entry.push_str(line.trim());
        }
    }
    entries
        .iter()
        .map(|entry| HelpFlag {
            flag: entry
                .split_whitespace()
                .map(|word| word.trim_end_matches(','))
                .find(|word| word.starts_with("--"))
                .expect("an entry names its flag")
                .to_owned(),
            env: bracketed(entry, "[env: ").map(|env| env.split('=').next().unwrap().to_owned()),
            default: bracketed(entry, "[default: "),
        })
        .collect()
}

/// The text between `open` and the next `]` in `entry`.
fn bracketed(entry: &str, open: &str) -> Option<String> {
    let (_, rest) = entry.split_once(open)?;
    Some(rest.split(']').next().unwrap_or_default().to_owned())
}
