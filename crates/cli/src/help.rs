//! `--help` states each setting's default as the code resolves it: the help of
//! every flag whose setting has a value by default ends in `[default: VALUE]`,
//! taken from the `Default` settings, so the help cannot disagree with the code.
//! (clap's own `default_value` cannot be used: it would override the config file.)

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use serde::Serialize;
use serde_json::Value;

/// Adds `[default: VALUE]` to the help of each of `command`'s flags that is a key
/// of `defaults` (serialized) with a value; settings that default to nothing
/// (`None`, an empty list) keep their help as it is.
pub fn with_defaults(command: Command, defaults: &impl Serialize) -> Command {
    let Value::Object(defaults) =
        serde_json::to_value(defaults).expect("settings serialize to an object")
    else {
        panic!("settings serialize to an object")
    };
    command.mut_args(
        |arg| match defaults.get(arg.get_id().as_str()).and_then(shown) {
            Some(value) => {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {value}]"))
            }
            None => arg,
        },
    )
}

/// How a default reads in the help; `None` for a setting with no value.
fn shown(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// Parses the command line into `P`, with `annotate` applied to its `Command`
/// first (see [`with_defaults`]). Exits with clap's message on bad arguments.
pub fn parse<P: CommandFactory + FromArgMatches>(annotate: impl FnOnce(Command) -> Command) -> P {
    let matches: ArgMatches = annotate(P::command()).get_matches();
    P::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{GatewayArgs, GatewaySettings};
    use crate::server::{ServerArgs, ServerSettings};
    use clap::Args;
    use std::collections::BTreeSet;

    fn setting_names(defaults: &impl Serialize) -> BTreeSet<String> {
        let Value::Object(map) = serde_json::to_value(defaults).unwrap() else {
            panic!()
        };
        map.keys().cloned().collect()
    }

    /// Flags that name files of settings rather than being a setting.
    const NOT_SETTINGS: [&str; 2] = ["config", "legacy_config"];

    fn flag_ids(command: &Command) -> BTreeSet<String> {
        command
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| !NOT_SETTINGS.contains(&id.as_str()))
            .collect()
    }

    /// Defaults are matched to flags by name: every setting has its flag and
    /// every flag (but `--config`) its setting, or a default would go unshown.
    #[test]
    fn every_setting_has_a_flag_of_the_same_name() {
        let server = ServerArgs::augment_args(Command::new("ferry-server"));
        assert_eq!(flag_ids(&server), setting_names(&ServerSettings::default()));
        let gateway = GatewayArgs::augment_args(Command::new("ferry-gateway"));
        assert_eq!(
            flag_ids(&gateway),
            setting_names(&GatewaySettings::default())
        );
    }

    #[test]
    fn the_help_states_the_defaults_the_code_resolves() {
        let command = with_defaults(
            ServerArgs::augment_args(Command::new("ferry-server")),
            &ServerSettings::default(),
        );
        let help = |id: &str| {
            command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_help())
                .map(ToString::to_string)
                .unwrap()
        };
        assert!(
            help("listen").ends_with("[default: 127.0.0.1:6868]"),
            "{}",
            help("listen")
        );
        assert!(help("encryption").ends_with("[default: accepted]"));
        assert!(help("idle_timeout").ends_with("[default: 30]"));
        assert!(
            !help("max_item_bytes").contains("[default:"),
            "no value, no default shown"
        );
    }

    /// The gateway's `Location` links point at the admin API where the server
    /// puts it by default.
    #[test]
    fn the_gateway_links_to_where_the_admin_api_listens() {
        assert_eq!(
            GatewaySettings::default().admin_url,
            format!("http://{}", ServerSettings::default().admin_listen)
        );
        assert_eq!(
            GatewaySettings::default().server,
            ServerSettings::default().listen.to_string()
        );
    }
}
