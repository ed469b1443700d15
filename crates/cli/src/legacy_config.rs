//! `--legacy-config`: the legacy Python server's INI files read as Ferry settings.
//!
//! The legacy server reads `etc/default.ini`, then `etc/config.ini`; given the same
//! files in the same order, Ferry listens, decrypts, exports and prints as that
//! server did. Later files override earlier ones, and Ferry's own settings (the
//! TOML file, the environment, the flags) override all of them. Every legacy
//! setting is mapped; the one Ferry has no equivalent for (`stream_output`), and
//! any key or section the legacy server did not read, gets a warning naming it.
//! Relative paths that start with `.` are taken from the legacy project's root,
//! the folder above the file's `etc/` folder, as the legacy server took them.

use crate::server::ServerSettings;
use anyhow::{Context, bail};
use ferry_server::EncryptionPolicy;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The settings the legacy server read, by section.
const KNOWN: &[(&str, &[&str])] = &[
    ("listening", &["host", "port"]),
    ("encryption", &["enabled", "symmetric_key_file"]),
    (
        "output",
        &[
            "stream_output",
            "file_output_enabled",
            "dictionary_output_format",
            "file_output_directory",
            "file_name_format",
            "print_output_enabled",
        ],
    ),
    ("serialization", &["pickle_enabled"]),
];

/// One value and the file it came from.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    file: PathBuf,
}

/// The merged files: `(section, key) -> value`, later files winning.
#[derive(Debug, Default)]
struct Merged(BTreeMap<(String, String), Value>);

/// Applies the legacy INI `files`, in order, over `settings`.
pub(crate) fn apply(
    mut settings: ServerSettings,
    files: &[PathBuf],
) -> anyhow::Result<ServerSettings> {
    if files.is_empty() {
        return Ok(settings);
    }
    let mut merged = Merged::default();
    for file in files {
        merged.read(file)?;
    }
    merged.warn_unknown();
    merged.listening(&mut settings)?;
    merged.encryption(&mut settings)?;
    merged.output(&mut settings)?;
    if let Some(allow) = merged.boolean("serialization", "pickle_enabled")? {
        settings.allow_pickle = allow;
    }
    Ok(settings)
}

impl Merged {
    fn read(&mut self, file: &Path) -> anyhow::Result<()> {
        let options = ini::ParseOption {
            // Python's configparser keeps quotes and backslashes as they are
            // and continues a value on indented lines.
            enabled_quote: false,
            enabled_escape: false,
            enabled_indented_mutiline_value: true,
            ..ini::ParseOption::default()
        };
        let parsed = ini::Ini::load_from_file_opt(file, options)
            .with_context(|| format!("cannot read the legacy config {}", file.display()))?;
        for (section, properties) in &parsed {
            for (key, text) in properties {
                // configparser matches keys whatever their case.
                let section = section.unwrap_or("").to_owned();
                self.0.insert(
                    (section, key.to_lowercase()),
                    Value {
                        text: text.trim().to_owned(),
                        file: file.to_owned(),
                    },
                );
            }
        }
        Ok(())
    }

    fn warn_unknown(&self) {
        for ((section, key), value) in &self.0 {
            let known = KNOWN
                .iter()
                .any(|(name, keys)| name == section && keys.contains(&key.as_str()));
            if !known {
                tracing::warn!(file = %value.file.display(), section, key, "legacy config: the legacy server did not read this setting; ignored");
            }
        }
    }

    fn get(&self, section: &str, key: &str) -> Option<&Value> {
        self.0.get(&(section.to_owned(), key.to_owned()))
    }

    /// A boolean as configparser's `getboolean` reads it.
    fn boolean(&self, section: &str, key: &str) -> anyhow::Result<Option<bool>> {
        let Some(value) = self.get(section, key) else {
            return Ok(None);
        };
        match value.text.to_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(Some(true)),
            "0" | "no" | "false" | "off" => Ok(Some(false)),
            other => bail!(
                "legacy config {}: [{section}] {key} = {other:?} is not a boolean (true/false, yes/no, on/off, 1/0)",
                value.file.display()
            ),
        }
    }

    /// A path: relative ones that start with `.` are taken from the legacy
    /// project's root (the folder above `etc/`).
    fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        let value = self.get(section, key)?;
        let path = PathBuf::from(&value.text);
        if !value.text.starts_with('.') {
            return Some(path);
        }
        let root = value
            .file
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        Some(root.join(path))
    }

    fn listening(&self, settings: &mut ServerSettings) -> anyhow::Result<()> {
        let host = self.get("listening", "host");
        let port = self.get("listening", "port");
        if host.is_none() && port.is_none() {
            return Ok(());
        }
        let port = match port {
            Some(value) => value.text.parse::<u16>().with_context(|| {
                format!(
                    "legacy config {}: [listening] port = {:?} is not a port number",
                    value.file.display(),
                    value.text
                )
            })?,
            None => settings.listen.port(),
        };
        settings.listen = match host {
            // Python binds "" to every interface.
            Some(value) if value.text.is_empty() => SocketAddr::from(([0, 0, 0, 0], port)),
            Some(value) => (value.text.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .with_context(|| {
                    format!(
                        "legacy config {}: [listening] host = {:?} is not an address this machine can resolve",
                        value.file.display(),
                        value.text
                    )
                })?,
            None => SocketAddr::new(settings.listen.ip(), port),
        };
        Ok(())
    }

    fn encryption(&self, settings: &mut ServerSettings) -> anyhow::Result<()> {
        let enabled = self.boolean("encryption", "enabled")?;
        if let Some(enabled) = enabled {
            settings.encryption = if enabled {
                EncryptionPolicy::Accepted
            } else {
                EncryptionPolicy::Disabled
            };
        }
        if let Some(key) = self.path("encryption", "symmetric_key_file") {
            if enabled == Some(true) && !key.exists() {
                bail!(
                    "legacy config: encryption is enabled and [encryption] symmetric_key_file names {}, which does not exist (the legacy server would not start either): give the key the clients use",
                    key.display()
                );
            }
            settings.fernet_key = Some(key);
        }
        Ok(())
    }

    fn output(&self, settings: &mut ServerSettings) -> anyhow::Result<()> {
        if self.boolean("output", "stream_output")? == Some(true) {
            tracing::warn!(
                "legacy config: [output] stream_output has no equivalent in Ferry: a text is printed and exported once it is stored whole (before the client hears OK), never packet by packet"
            );
        }
        match self.boolean("output", "file_output_enabled")? {
            Some(true) => {
                let dir = self.path("output", "file_output_directory").context(
                    "legacy config: [output] file_output_enabled is true but file_output_directory is not set",
                )?;
                settings.export_dir = Some(dir);
            }
            Some(false) => settings.export_dir = None,
            None => {}
        }
        if let Some(value) = self.get("output", "dictionary_output_format") {
            settings.export_original = match value.text.as_str() {
                "json" => false,
                "original" => true,
                other => bail!(
                    "legacy config {}: [output] dictionary_output_format = {other:?}: expected json or original",
                    value.file.display()
                ),
            };
        }
        if let Some(value) = self.get("output", "file_name_format") {
            settings.export_template = value.text.clone();
        }
        if let Some(print) = self.boolean("output", "print_output_enabled")? {
            settings.print = print;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(default: &str, config: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("default.ini"), default).unwrap();
        std::fs::write(etc.join("config.ini"), config).unwrap();
        let files = vec![etc.join("default.ini"), etc.join("config.ini")];
        (root, files)
    }

    #[test]
    fn later_files_override_earlier_ones_and_dot_paths_start_at_the_project_root() {
        let (root, files) = checkout(
            "[listening]\nhost = 127.0.0.1\nport = 6868\n[output]\nfile_output_enabled = False\nfile_output_directory = ./output\nprint_output_enabled = no\n[serialization]\npickle_enabled = True\n",
            "[listening]\nport = 7000\n[output]\nFile_Output_Enabled = yes\n[serialization]\npickle_enabled = off\n",
        );
        let settings = apply(ServerSettings::default(), &files).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(
            settings.export_dir.as_deref(),
            Some(root.path().join("output").as_path())
        );
        assert!(!settings.allow_pickle);
        assert!(!settings.print);
    }

    #[test]
    fn a_value_that_is_no_boolean_is_an_error_naming_it() {
        let (_root, files) = checkout("[output]\nprint_output_enabled = maybe\n", "");
        let err = apply(ServerSettings::default(), &files).unwrap_err();
        assert!(err.to_string().contains("print_output_enabled"), "{err}");
    }

    #[test]
    fn an_unknown_output_format_is_an_error() {
        let (_root, files) = checkout("[output]\ndictionary_output_format = yaml\n", "");
        let err = apply(ServerSettings::default(), &files).unwrap_err();
        assert!(
            err.to_string().contains("expected json or original"),
            "{err}"
        );
    }
}
