//! Which ids a listing by time has to look at.
//!
//! Items are keyed by id, and an id (a ULID) carries the millisecond its item
//! began, close to but not always exactly its `received_at` (another server's
//! clock, a store that stamps one before the other). So the catalog keeps the
//! widest gap ever seen between the two ([`Skew`]), and a listing with `since` or
//! `until` looks only at the ids whose time is within that gap of the range: every
//! item received in the range is among them, whatever its gap was. The gap only
//! widens (removing items does not narrow it), so it always covers every entry.

use std::ops::Bound;

use crate::ItemMeta;
use time::OffsetDateTime;

const NANOS_PER_MS: i128 = 1_000_000;
/// The largest millisecond a ULID can carry (48 bits).
const MAX_MS: i128 = (1 << 48) - 1;

/// Over every entry ever put: its id's millisecond minus its `received_at`, in
/// milliseconds rounded outward, lies in `low..=high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Skew {
    pub low: i64,
    pub high: i64,
}

impl Skew {
    /// The gap of one item.
    pub(super) fn of(meta: &ItemMeta) -> Skew {
        let gap = i128::from(meta.id.timestamp_ms()) * NANOS_PER_MS
            - meta.received_at.unix_timestamp_nanos();
        Skew {
            low: saturate(gap.div_euclid(NANOS_PER_MS)),
            high: saturate(-(-gap).div_euclid(NANOS_PER_MS)),
        }
    }

    /// The gap that covers both.
    pub(super) fn widen(self, other: Skew) -> Skew {
        Skew {
            low: self.low.min(other.low),
            high: self.high.max(other.high),
        }
    }

    /// The keys (ids as big-endian `u128`) of every entry that can have been
    /// received in `since..until` (either end open when `None`); `None` if no
    /// id can.
    pub(super) fn keys(
        self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Option<(Bound<u128>, Bound<u128>)> {
        let lower = match since {
            None => Bound::Unbounded,
            Some(since) => {
                let ms =
                    since.unix_timestamp_nanos().div_euclid(NANOS_PER_MS) + i128::from(self.low);
                if ms > MAX_MS {
                    return None;
                }
                if ms <= 0 {
                    Bound::Unbounded
                } else {
                    Bound::Included(first_key_of(ms))
                }
            }
        };
        let upper = match until {
            None => Bound::Unbounded,
            Some(until) => {
                let ms = -(-until.unix_timestamp_nanos()).div_euclid(NANOS_PER_MS)
                    + i128::from(self.high);
                if ms < 0 {
                    return None;
                }
                if ms >= MAX_MS {
                    Bound::Unbounded
                } else {
                    Bound::Excluded(first_key_of(ms + 1))
                }
            }
        };
        Some((lower, upper))
    }
}

/// The smallest key of millisecond `ms` (in `0..=MAX_MS`).
fn first_key_of(ms: i128) -> u128 {
    (ms as u128) << 80
}

fn saturate(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ItemId;
    use std::ops::RangeBounds;
    use time::Duration;

    fn key(id: ItemId) -> u128 {
        u128::from_be_bytes(id.to_bytes())
    }

    /// An id made at `ms`, with the smallest and largest random parts.
    fn ids_at(ms: u64) -> [ItemId; 2] {
        let low = u128::from(ms) << 80;
        [low, low | ((1u128 << 80) - 1)].map(|k| ItemId::from_bytes(k.to_be_bytes()))
    }

    #[test]
    fn the_keys_cover_every_id_within_the_gap() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let at_ms = 1_700_000_000_123u64;
        // Ids 5 ms before to 7 ms after their items.
        let skew = Skew { low: -5, high: 7 };
        let (from, to) = skew
            .keys(Some(at), Some(at + Duration::nanoseconds(1)))
            .unwrap();
        let range = (from, to);
        for ms in at_ms - 5..=at_ms + 7 {
            for id in ids_at(ms) {
                assert!(range.contains(&key(id)), "{ms}");
            }
        }
        // Outside the gap, with a millisecond of rounding on either side.
        assert!(!range.contains(&key(ids_at(at_ms - 7)[1])));
        assert!(!range.contains(&key(ids_at(at_ms + 9)[0])));
    }

    #[test]
    fn the_gap_of_an_item_is_rounded_outward() {
        let [id, _] = ids_at(1_000);
        let meta = |nanos: i128| ItemMeta {
            received_at: OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap(),
            ..crate::catalog::tests::meta(id)
        };
        assert_eq!(Skew::of(&meta(1_000_000_000)), Skew { low: 0, high: 0 });
        assert_eq!(Skew::of(&meta(999_500_000)), Skew { low: 0, high: 1 });
        assert_eq!(Skew::of(&meta(1_000_500_000)), Skew { low: -1, high: 0 });
    }

    #[test]
    fn ranges_past_what_ids_can_carry_are_empty_or_open() {
        let early = OffsetDateTime::from_unix_timestamp(-10).unwrap();
        let late = OffsetDateTime::from_unix_timestamp(250_000_000_000).unwrap();
        let exact = Skew { low: 0, high: 0 };
        assert_eq!(exact.keys(None, Some(early)), None);
        assert_eq!(
            exact.keys(Some(early), Some(late)),
            Some((
                Bound::Unbounded,
                Bound::Excluded(first_key_of(250_000_000_000_001))
            ))
        );
        let wide = Skew {
            low: 1 << 47,
            high: 1 << 47,
        };
        assert_eq!(wide.keys(Some(late), None), None);
        assert_eq!(
            wide.keys(Some(early), Some(late)),
            Some((
                Bound::Included(first_key_of((1 << 47) - 10_000)),
                Bound::Unbounded
            ))
        );
    }
}
