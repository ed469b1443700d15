//! Retention: how long items are kept, by kind and format, and the sweep that
//! deletes expired items that are not on legal hold.
//!
//! Rules are written `KIND=DURATION` or `KIND.FORMAT=DURATION`, comma-separated:
//! `dict=30d,text=7d,dict.json=1d`. Kinds are `dict` (or `dictionary`) and `text`;
//! formats are the names of [`Serialization`] (`txt`, `binary`, `json`, `xml`;
//! `pickle` is `binary`); durations are `humantime`'s (`90s`, `12h`, `30d`,
//! `1w 2d`). The most specific rule wins: `dict.json=1d` over `dict=30d` for a
//! JSON dictionary. An item no rule names is kept until it is deleted. The same
//! rules deserialize from that text or from a table of the same keys and values
//! (`dict = "30d"`, `"dict.json" = "1d"`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ferry_protocol::{DataType, Serialization};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::{Cause, ItemMeta, ListQuery, Store, StoreError};

/// Items listed per page by [`sweep_expired`]: what it holds in memory at once.
const SWEEP_PAGE: usize = 256;

/// Retention rules (see the module docs of `retention.rs`). The default has none: every
/// item is kept until it is deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    rules: Vec<Rule>,
}

/// One rule: items of `data_type` (and `serialization`, if set) are kept `keep`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    data_type: DataType,
    serialization: Option<Serialization>,
    keep: Duration,
}

/// Retention rules that do not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid retention rule {rule:?}: {reason}")]
pub struct RetentionError {
    rule: String,
    reason: String,
}

impl RetentionError {
    fn new(rule: &str, reason: impl Into<String>) -> RetentionError {
        RetentionError {
            rule: rule.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Retention {
    /// Whether there is no rule (nothing ever expires).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How long items of this kind and format are kept; `None`: until deleted.
    pub fn keep(&self, data_type: DataType, serialization: Serialization) -> Option<Duration> {
        self.rule(data_type, serialization).map(|r| r.keep)
    }

    /// The rule for items of this kind and format, the most specific one.
    fn rule(&self, data_type: DataType, serialization: Serialization) -> Option<&Rule> {
        let exact = |r: &&Rule| r.data_type == data_type && r.serialization == Some(serialization);
        let kind = |r: &&Rule| r.data_type == data_type && r.serialization.is_none();
        self.rules
            .iter()
            .find(exact)
            .or_else(|| self.rules.iter().find(kind))
    }

    /// The text of the rule that expires `meta` (`dict=30days`), if one does.
    pub fn rule_text(&self, meta: &ItemMeta) -> Option<String> {
        let rule = *self.rule(meta.data_type, meta.serialization)?;
        Some(Retention { rules: vec![rule] }.to_string())
    }

    /// When the item expires; `None` if no rule names it (or the instant is past
    /// what a date can hold). A held item has an expiry too: it is kept past it.
    pub fn expires_at(&self, meta: &ItemMeta) -> Option<OffsetDateTime> {
        let keep = self.keep(meta.data_type, meta.serialization)?;
        meta.received_at
            .checked_add(time::Duration::try_from(keep).ok()?)
    }

    /// The shortest time any rule keeps items.
    fn shortest(&self) -> Option<Duration> {
        self.rules.iter().map(|r| r.keep).min()
    }

    /// Adds the rule `key=value` (`key` is `KIND` or `KIND.FORMAT`).
    fn add(&mut self, key: &str, value: &str) -> Result<(), RetentionError> {
        let rule = format!("{key}={value}");
        let (kind, format) = match key.trim().split_once('.') {
            Some((kind, format)) => (kind, Some(format)),
            None => (key.trim(), None),
        };
        let data_type = match kind {
            "dict" | "dictionary" => DataType::Dictionary,
            "text" => DataType::Text,
            other => {
                return Err(RetentionError::new(
                    &rule,
                    format!("unknown kind {other:?}: expected dict or text"),
                ));
            }
        };
        let serialization = format
            .map(|format| match format {
                "txt" => Ok(Serialization::Txt),
                "binary" | "pickle" => Ok(Serialization::Binary),
                "json" => Ok(Serialization::Json),
                "xml" => Ok(Serialization::Xml),
                other => Err(RetentionError::new(
                    &rule,
                    format!("unknown format {other:?}: expected txt, binary (pickle), json or xml"),
                )),
            })
            .transpose()?;
        let keep = humantime::parse_duration(value.trim()).map_err(|err| {
            RetentionError::new(
                &rule,
                format!(
                    "{:?} is not a duration ({err}); write it like 90s, 12h, 30d or 1w 2d",
                    value.trim()
                ),
            )
        })?;
        if keep.is_zero() {
            return Err(RetentionError::new(
                &rule,
                "a retention must be longer than zero (leave the kind out to keep its items until deleted)",
            ));
        }
        if self
            .rules
            .iter()
            .any(|r| r.data_type == data_type && r.serialization == serialization)
        {
            return Err(RetentionError::new(
                &rule,
                "this kind and format has a rule already",
            ));
        }
        self.rules.push(Rule {
            data_type,
            serialization,
            keep,
        });
        Ok(())
    }
}

impl FromStr for Retention {
    type Err = RetentionError;

    /// Parses `dict=30d,text=7d,dict.json=1d`; an empty text has no rule.
    fn from_str(text: &str) -> Result<Retention, RetentionError> {
        let mut retention = Retention::default();
        for rule in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (key, value) = rule.split_once('=').ok_or_else(|| {
                RetentionError::new(
                    rule,
                    "expected KIND=DURATION or KIND.FORMAT=DURATION, such as dict=30d",
                )
            })?;
            retention.add(key, value)?;
        }
        Ok(retention)
    }
}

impl fmt::Display for Retention {
    /// The rules as they parse back: `dict=30days,dict.json=1day`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            let kind = match rule.data_type {
                DataType::Dictionary => "dict",
                DataType::Text => "text",
            };
            let keep = humantime::format_duration(rule.keep)
                .to_string()
                .replace(' ', "");
            let comma = if i == 0 { "" } else { "," };
            match rule.serialization {
                Some(format) => write!(f, "{comma}{kind}.{}={keep}", format.as_str())?,
                None => write!(f, "{comma}{kind}={keep}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retention {
    /// From the text of the rules, or a table of them (`dict = "30d"`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Retention, D::Error> {
        struct Rules;

        impl<'de> Visitor<'de> for Rules {
            type Value = Retention;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "retention rules: \"dict=30d,text=7d\", or a table such as { dict = \"30d\" }",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Retention, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Retention, A::Error> {
                let mut retention = Retention::default();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    retention.add(&key, &value).map_err(de::Error::custom)?;
                }
                Ok(retention)
            }
        }

        deserializer.deserialize_any(Rules)
    }
}

/// What one [`sweep_expired`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired items deleted.
    pub expired: u64,
    /// Expired items kept because they are on legal hold.
    pub held: u64,
}

/// Deletes every item that has expired by `now` under `retention` and is not on
/// legal hold, a page of the listing at a time (memory stays bounded), through
/// the [`Store`] trait alone. Counts each item deleted in the counter
/// `ferry_items_expired_total` (by `data_type` and `format`) and, once the sweep
/// is complete, the held items kept past their expiry in the gauge
/// `ferry_items_held_past_expiry`.
///
/// # Errors
/// The first failure of a listing or a delete ends the sweep; the items deleted
/// before it are gone (and counted), and the next sweep goes on from the others.
pub async fn sweep_expired(
    store: &dyn Store,
    retention: &Retention,
    now: OffsetDateTime,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    // Nothing received after `now` less the shortest retention has expired.
    let until = retention
        .shortest()
        .and_then(|keep| time::Duration::try_from(keep).ok())
        .and_then(|keep| now.checked_sub(keep));
    let Some(until) = until else {
        metrics::gauge!("ferry_items_held_past_expiry").set(0.0);
        return Ok(swept);
    };
    let mut query = ListQuery {
        until: Some(until),
        limit: SWEEP_PAGE,
        ..ListQuery::default()
    };
    loop {
        let page = store.list(&query).await?;
        for meta in &page.items {
            if retention.expires_at(meta).is_none_or(|at| at > now) {
                continue;
            }
            if meta.held {
                swept.held += 1;
                continue;
            }
            let rule = retention.rule_text(meta).unwrap_or_default();
            match store.delete_as(meta.id, &Cause::Expired { rule }).await {
                Ok(true) => {
                    swept.expired += 1;
                    let labels = [
                        ("data_type", meta.data_type.as_str()),
                        ("format", meta.serialization.as_str()),
                    ];
                    metrics::counter!("ferry_items_expired_total", &labels).increment(1);
                }
                // Deleted meanwhile.
                Ok(false) => {}
                // Put on hold meanwhile.
                Err(StoreError::Held(_)) => swept.held += 1,
                Err(err) => return Err(err),
            }
        }
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    metrics::gauge!("ferry_items_held_past_expiry").set(swept.held as f64);
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ItemId, NewItem};

    fn meta(data_type: DataType, serialization: Serialization, age: Duration) -> ItemMeta {
        let item = NewItem {
            data_type,
            serialization,
            encrypted_in_transit: false,
            peer: "10.0.0.1:1".into(),
            name: None,
        };
        let received = OffsetDateTime::now_utc() - age;
        ItemMeta::new(ItemId::new(), item, received, 1, [0; 32], "k".into())
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn the_most_specific_rule_wins() {
        let r: Retention = "dict=30d, text=7d,dict.json=1d".parse().unwrap();
        assert_eq!(r.keep(DataType::Dictionary, Serialization::Json), Some(DAY));
        assert_eq!(
            r.keep(DataType::Dictionary, Serialization::Xml),
            Some(30 * DAY)
        );
        assert_eq!(r.keep(DataType::Text, Serialization::Txt), Some(7 * DAY));
        let only_json: Retention = "dict.json=2s".parse().unwrap();
        assert_eq!(
            only_json.keep(DataType::Dictionary, Serialization::Json),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            only_json.keep(DataType::Dictionary, Serialization::Binary),
            None
        );
        assert_eq!(only_json.keep(DataType::Text, Serialization::Txt), None);
        let pickle: Retention = "dictionary.pickle=1h".parse().unwrap();
        assert_eq!(
            pickle.keep(DataType::Dictionary, Serialization::Binary),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn expiry_is_the_arrival_plus_the_rule() {
        let r: Retention = "text=7d".parse().unwrap();
        let text = meta(DataType::Text, Serialization::Txt, Duration::ZERO);
        assert_eq!(
            r.expires_at(&text),
            Some(text.received_at + time::Duration::days(7))
        );
        let dict = meta(DataType::Dictionary, Serialization::Json, Duration::ZERO);
        assert_eq!(r.expires_at(&dict), None);
        let forever: Retention = "text=100000000000d".parse().unwrap();
        assert_eq!(forever.expires_at(&text), None, "past what a date holds");
    }

    #[test]
    fn nonsense_and_zero_are_refused_with_the_rule_named() {
        for (text, says) in [
            ("dict", "expected KIND=DURATION"),
            ("dict=0s", "longer than zero"),
            ("dict=soon", "is not a duration"),
            ("dict=30", "is not a duration"),
            ("files=1d", "unknown kind \"files\""),
            ("dict.yaml=1d", "unknown format \"yaml\""),
            ("dict=1d,dict=2d", "has a rule already"),
        ] {
            let err = text.parse::<Retention>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.starts_with("invalid retention rule"), "{text}: {err}");
        }
        assert!("".parse::<Retention>().unwrap().is_empty());
    }

    #[test]
    fn the_text_round_trips_and_a_table_reads_the_same() {
        let r: Retention = "dict=30d,text=1h 30m,dict.json=2s".parse().unwrap();
        assert_eq!(r.to_string(), "dict=30days,text=1h30m,dict.json=2s");
        assert_eq!(r.to_string().parse::<Retention>().unwrap(), r);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(serde_json::from_value::<Retention>(json).unwrap(), r);
        let table = serde_json::json!({"dict": "30d", "text": "90m", "dict.json": "2s"});
        assert_eq!(serde_json::from_value::<Retention>(table).unwrap(), r);
        let bad = serde_json::json!({"dict": "0s"});
        assert!(serde_json::from_value::<Retention>(bad).is_err());
    }
}
