//! The binary serialization: Python pickles, protocols 0 to 5.
//!
//! Decoding never runs anything. A pickle is first walked opcode by opcode
//! ([`scan`]): anything that names a global other than `set`/`frozenset`, builds an
//! object, uses persistent ids, extension codes or out-of-band buffers, or holds
//! bytes is refused there with a clear reason, as is nesting beyond the limit and
//! memo tricks that would make the decoder copy excessively. Only then does
//! serde-pickle (never with `replace_unresolved_globals`) evaluate it, through a
//! serde visitor ([`visit`]) that keeps key order, keeps integers of any size exact,
//! and bounds depth and the total data produced through shared references.
//!
//! Mapping of Python-only types: tuples, sets and frozensets become lists; dictionary
//! keys that are int, float, bool or None become strings as `json.dumps` writes them
//! (`1` → `"1"`, `True` → `"true"`, `None` → `"null"`, `1.5` → `"1.5"`); other keys
//! (tuples, frozensets) and `bytes`/`bytearray` values are refused; floats that JSON
//! cannot carry (nan, inf) are refused.
//!
//! Encoding ([`write`]) writes protocol 4 that Python loads to the same dict, in
//! order, with integers of any size.

mod scan;
mod visit;
mod write;

use crate::{CodecError, Dict, Limits, top_level_dict};

/// Decodes and validates a pickled dictionary (see the module docs).
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Dict, CodecError> {
    let checked = scan::scan(bytes, limits)?;
    let value = visit::evaluate(&checked, limits)?;
    top_level_dict(value)
}

/// Encodes a dictionary as a pickle Python loads back to the same dict.
pub(crate) fn encode(dict: &Dict) -> Vec<u8> {
    write::pickle(dict)
}
