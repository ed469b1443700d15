//! The one error type of the codecs. Every message is meant for the sender of the
//! dictionary: it says what was refused and why, never how the code works inside.

/// Why a dictionary could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serialization `txt` was asked to carry a dictionary.
    #[error("a dictionary cannot travel as plain text: use binary, json or xml")]
    NotADictionarySerialization,
    /// The serialized dictionary is larger than [`crate::Limits::max_bytes`].
    #[error("dictionary of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// A pickle's shared references expand to more data than allowed.
    #[error("dictionary expands to more than {limit} bytes through shared references")]
    ExpandsTooFar { limit: usize },
    /// Nesting beyond [`crate::Limits::max_depth`].
    #[error("dictionary nests deeper than {0} levels")]
    TooDeep(usize),
    /// The top level decoded to something other than a dictionary.
    #[error("not a dictionary: the top level is {0}")]
    NotADictionary(&'static str),
    /// Malformed json.
    #[error("json refused: {0}")]
    Json(String),
    /// A pickle that names a global (a class or function), which could run code in Python.
    #[error("pickle refused: it names a global ({0}); only plain data is accepted")]
    PickleGlobal(String),
    /// A pickle holding `bytes` or `bytearray`.
    #[error("pickle refused: bytes values are not supported; send text (str) instead")]
    PickleBytes,
    /// Any other refused or malformed pickle.
    #[error("pickle refused: {0}")]
    Pickle(String),
    /// XML with a DOCTYPE or an entity reference other than the five predefined ones.
    #[error("xml refused: DOCTYPE and entities are not accepted")]
    XmlEntities,
    /// XML that is malformed or not of the flat legacy shape.
    #[error("xml refused: {0}")]
    Xml(String),
    /// A key that is not a valid XML element name.
    #[error("xml cannot carry the key {0:?} as an element name")]
    XmlKey(String),
    /// A value holding a character that XML 1.0 cannot carry at all.
    #[error("xml cannot carry the character U+{code:04X} in the value of the key {key:?}")]
    XmlChar { key: String, code: u32 },
}
