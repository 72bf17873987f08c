//! The LVM2 metadata text grammar (`libdm/libdm-config.c`): a parser from bytes to a generic,
//! order-preserving tree, and a printer that writes the tree back the way LVM formats it.
//!
//! Facts taken from libdm-config.c and checked against lvm2 2.03.16:
//! - tokens: `{ } [ ] , =`, `"..."` (backslash escapes `\"` and `\\`; any other backslash is
//!   kept as it is), `'...'` (no escapes), numbers (`[+-]?digits[.digits]` where a value is
//!   allowed), and bare words running to whitespace, `#`, `=`, `{` or `}`;
//! - `#` starts a comment to the end of the line; a NUL byte ends the text (the on-disk copy
//!   ends with one);
//! - integers are read with `strtoll(.., 0)`, so a leading `0` means octal; floats with
//!   `strtod`;
//! - LVM merges a repeated section and lets the last of a repeated value win with a warning
//!   (`_find_or_make_node`, `_section`; stock vgcfgrestore accepts such text); rewind refuses
//!   both, because a merge it guessed differently could change what it writes;
//! - LVM takes bytes; free-text strings (`creation_host`, `description`) may hold non-UTF-8
//!   bytes and LVM writes them back unchanged (names and tags are ASCII by LVM's own rules);
//! - a `/` in a key is a path separator to LVM; rewind refuses such keys for the same reason.
//!
//! Two readings. [`parse_lvm`] reads metadata as LVM does, byte for byte where LVM is exact,
//! and is what rewind reads disks with: bytes that are not UTF-8 are kept (and written back
//! by [`print_bytes`]), words, arrays and strings the text ends inside are tokenized as
//! `_get_token` does. [`parse`] is rewind's stricter reading of texts it makes or is given
//! (configuration, tests): strings and keys must be UTF-8, a bare word in a value also stops
//! at `,` `[` `]`, and any element of an array may follow another without a comma.
//!
//! Both refuse what LVM would guess at: the text is bounded ([`MAX_TEXT_BYTES`],
//! [`MAX_DEPTH`]); numbers must be well formed and in range (strtoll would clamp or stop
//! early); repeated keys and keys with `/` (see above).
//!
//! The printer writes what LVM's `export.c` writes, line for line except comments: tabs in
//! backup layout, none on disk, the same blank lines, `stripes` one pair per line.

use std::fmt::Write as _;

use thiserror::Error;

/// Largest metadata text accepted. LVM's own metadata areas default to 1 MiB and are rarely
/// made larger than a few; 64 MiB leaves room while keeping a corrupt size harmless.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// Deepest nesting of sections accepted. VG metadata nests five deep (root, VG,
/// `logical_volumes`, LV, segment); the headroom is for unknown segment types.
pub const MAX_DEPTH: usize = 32;

/// A value on the right of `key =`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// An integer (LVM keeps these as `int64_t`).
    Int(i64),
    /// A floating point number (printed with `%f` like LVM when that is exact).
    Float(f64),
    /// A string, whether it was double-quoted, single-quoted or bare.
    Str(String),
    /// An array; `[]` is an empty array. Elements are never arrays themselves.
    Array(Vec<Value>),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A string array (`["READ", "WRITE"]`) as strings; `None` if any element is not a string.
    pub fn as_str_array(&self) -> Option<Vec<&str>> {
        self.as_array()?.iter().map(Value::as_str).collect()
    }

    /// An array of strings.
    pub fn str_array<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|s| Value::Str(s.as_ref().to_owned()))
                .collect(),
        )
    }
}

/// What a key holds: a value or a section.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Node {
    /// `key = value`
    Value(Value),
    /// `key { ... }`
    Section(Section),
}

/// One `key = value` or `key { ... }`, in the order it appeared.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// The key (section name or value name).
    pub key: String,
    /// What it holds.
    pub node: Node,
}

/// A section: its entries in order. The whole text is the root section.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Section {
    /// Entries in the order they were read (or inserted).
    pub entries: Vec<Entry>,
}

impl Section {
    /// The node under `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }

    /// The node under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.node)
    }

    /// The value under `key`, if `key` holds a value.
    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.get(key)? {
            Node::Value(v) => Some(v),
            Node::Section(_) => None,
        }
    }

    /// The section under `key`, if `key` holds a section.
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Node::Section(s) => Some(s),
            Node::Value(_) => None,
        }
    }

    /// The section under `key`, mutably.
    pub fn section_mut(&mut self, key: &str) -> Option<&mut Section> {
        match self.get_mut(key)? {
            Node::Section(s) => Some(s),
            Node::Value(_) => None,
        }
    }

    /// The string under `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key)?.as_str()
    }

    /// The integer under `key`.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.value(key)?.as_int()
    }

    /// Sub-sections in order, with their keys.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|e| match &e.node {
            Node::Section(s) => Some((e.key.as_str(), s)),
            Node::Value(_) => None,
        })
    }

    /// Sets `key` to `value` where it is, or appends it at the end.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.node = Node::Value(value),
            None => self.entries.push(Entry {
                key: key.to_owned(),
                node: Node::Value(value),
            }),
        }
    }

    /// Renames `from` to `to` in place, keeping its position and what it holds.
    /// Returns false when `from` is absent.
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        match self.entries.iter_mut().find(|e| e.key == from) {
            Some(e) => {
                e.key = to.to_owned();
                true
            }
            None => false,
        }
    }

    /// Removes `key`, returning what it held.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i).node)
    }
}

/// What went wrong, without the position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyntaxError {
    #[error("expected a key or '}}', found {0}")]
    ExpectedKey(String),
    #[error("expected '=' or '{{' after key \"{0}\", found {1}")]
    ExpectedEqOrBrace(String, String),
    #[error("expected a value, found {0}")]
    ExpectedValue(String),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("unbalanced '}}'")]
    UnbalancedClose,
    #[error("section \"{0}\" is not closed before the end of the text")]
    UnclosedSection(String),
    #[error("array is not closed before the end of the text")]
    UnclosedArray,
    #[error("empty key")]
    EmptyKey,
    #[error("key \"{0}\" contains '/', which LVM reads as a path")]
    SlashInKey(String),
    #[error("duplicate key \"{0}\" (LVM would merge or override it; rewind refuses)")]
    DuplicateKey(String),
    #[error("bad number \"{0}\"")]
    BadNumber(String),
    #[error("integer \"{0}\" out of range")]
    IntegerOutOfRange(String),
    #[error("text is not valid utf-8")]
    NotUtf8,
    #[error("text holds the character U+{:X}, which rewind reserves for bytes that are not utf-8", u32::from(*.0))]
    ReservedChar(char),
    #[error("sections nest deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Errors of the metadata text grammar.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    /// The text is larger than [`MAX_TEXT_BYTES`].
    #[error("metadata text is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// A syntax error at a position (1-based line and column, columns count bytes).
    #[error("metadata text line {line} column {column}: {kind}")]
    Syntax {
        line: usize,
        column: usize,
        kind: SyntaxError,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    ArrOpen,
    ArrClose,
    Comma,
    Eq,
    Str(String),
    Word(String),
    /// In LVM's mode: a word where no value may start (a key; LVM's `TOK_IDENTIFIER`).
    Ident(String),
    Int(i64),
    Float(f64),
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Open => "'{'".into(),
        Tok::Close => "'}'".into(),
        Tok::ArrOpen => "'['".into(),
        Tok::ArrClose => "']'".into(),
        Tok::Comma => "','".into(),
        Tok::Eq => "'='".into(),
        Tok::Str(s) => format!("string \"{}\"", truncate(s)),
        Tok::Word(s) | Tok::Ident(s) => format!("\"{}\"", truncate(s)),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Eof => "the end of the text".into(),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let mut t: String = s.chars().take(40).collect();
        t.push_str("...");
        t
    } else {
        s.to_owned()
    }
}

struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    /// LVM's own reading ([`parse_lvm`]) instead of rewind's strict one.
    lvm: bool,
    /// The value being read belongs to `creation_time` (LVM repairs an overflow there).
    creation_time: bool,
    /// `b` as a string when every token of it reads as the same string slice: valid UTF-8,
    /// in LVM's mode also without a character reserved for bytes (nearly every text; any
    /// other text is decoded token by token).
    text: Option<&'a str>,
}

type Pos = (usize, usize);

impl<'a> Lexer<'a> {
    fn here(&self) -> Pos {
        (self.line, self.pos - self.line_start + 1)
    }

    fn err(&self, at: Pos, kind: SyntaxError) -> TextError {
        TextError::Syntax {
            line: at.0,
            column: at.1,
            kind,
        }
    }

    fn skip_space(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if c == b'#' {
                // lvm.conf is mostly comments (~100 KB on Debian): skip them a word at a time.
                self.pos = memchr::memchr(b'\n', &self.b[self.pos..])
                    .map_or(self.b.len(), |n| self.pos + n);
            } else if c.is_ascii_whitespace() || c == 0x0b {
                if c == b'\n' {
                    self.line += 1;
                    self.line_start = self.pos + 1;
                }
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The string of the bytes `start..end` of the text.
    fn string(&self, start: usize, end: usize, at: Pos) -> Result<String, TextError> {
        // A token of a text already checked whole, that does not cut a character.
        match self.text.and_then(|t| t.get(start..end)) {
            Some(s) => Ok(s.to_owned()),
            None => self.utf8(&self.b[start..end], at),
        }
    }

    fn utf8(&self, bytes: &[u8], at: Pos) -> Result<String, TextError> {
        if self.lvm {
            return decode_raw(bytes).map_err(|c| self.err(at, SyntaxError::ReservedChar(c)));
        }
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| self.err(at, SyntaxError::NotUtf8))
    }

    /// The end of a quoted string starting at `self.pos` (the index of its closing quote),
    /// or `None` when the text ends first; counts the lines it spans. For `"`, a backslash
    /// makes the next byte part of the string (LVM's `_get_token`).
    fn string_end(&mut self, quote: u8) -> Option<usize> {
        let mut i = self.pos + 1;
        loop {
            // Only the quote, a backslash and a line break matter; jump to the next of them.
            i += memchr::memchr3(quote, b'\\', b'\n', self.b.get(i..)?)?;
            match self.b[i] {
                c if c == quote => return Some(i),
                b'\\' if quote == b'"' && i + 1 < self.b.len() => {
                    if self.b[i + 1] == b'\n' {
                        self.line += 1;
                        self.line_start = i + 2;
                    }
                    i += 2;
                }
                b'\n' => {
                    self.line += 1;
                    self.line_start = i + 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }

    /// A quoted string (`"` with `\"` and `\\` escapes, or `'` without). A string the text
    /// ends inside is an error, except in LVM's mode, where LVM takes it to the end of the
    /// text and drops its last byte as if it were the closing quote (`_dup_string_tok`).
    fn quoted(&mut self, quote: u8, at: Pos) -> Result<Tok, TextError> {
        let start = self.pos + 1;
        let end = match self.string_end(quote) {
            Some(end) => {
                self.pos = end + 1;
                end
            }
            None if self.lvm && self.b.len() > start => {
                self.pos = self.b.len();
                self.b.len() - 1
            }
            None => return Err(self.err(at, SyntaxError::UnterminatedString)),
        };
        let raw = &self.b[start..end];
        if quote == b'"' && memchr::memchr(b'\\', raw).is_some() {
            Ok(Tok::Str(self.utf8(&unescape(raw), at)?))
        } else {
            Ok(Tok::Str(self.string(start, end, at)?))
        }
    }

    /// Next token and where it starts. `value` says whether a number may start here
    /// (after `=`, `[` or `,`), as in LVM's tokenizer.
    fn next(&mut self, value: bool) -> Result<(Tok, Pos), TextError> {
        self.skip_space();
        let at = self.here();
        let Some(&c) = self.b.get(self.pos) else {
            return Ok((Tok::Eof, at));
        };
        let single = match c {
            b'{' => Some(Tok::Open),
            b'}' => Some(Tok::Close),
            b'[' => Some(Tok::ArrOpen),
            b']' => Some(Tok::ArrClose),
            b',' => Some(Tok::Comma),
            b'=' => Some(Tok::Eq),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return Ok((t, at));
        }
        match c {
            b'"' | b'\'' => self.quoted(c, at).map(|t| (t, at)),
            b'0'..=b'9' | b'+' | b'-' | b'.' if value => {
                let start = self.pos;
                let mut i = start + 1;
                let mut dot = c == b'.';
                while let Some(&ch) = self.b.get(i) {
                    if ch.is_ascii_digit() {
                        i += 1;
                    } else if ch == b'.' && !dot {
                        dot = true;
                        i += 1;
                    } else {
                        break;
                    }
                }
                self.pos = i;
                // Only ASCII digits, signs and dots were taken.
                let text = std::str::from_utf8(&self.b[start..i]).unwrap_or_default();
                let tok = if dot {
                    parse_float(text).map(Tok::Float)
                } else {
                    match parse_int(text) {
                        // LVM's `_type`: older 32-bit builds wrote creation times that do not
                        // fit; LVM reads them as 2018-05-24 and repairs them on its next write.
                        Err(SyntaxError::IntegerOutOfRange(_))
                            if self.lvm && self.creation_time =>
                        {
                            Ok(Tok::Int(REPAIRED_CREATION_TIME))
                        }
                        other => other.map(Tok::Int),
                    }
                };
                tok.map(|t| (t, at)).map_err(|k| self.err(at, k))
            }
            _ => {
                let start = self.pos;
                let mut i = start;
                // LVM's words end only at space, '#', '=', '{' and '}'; rewind's values also
                // at ',', '[' and ']'.
                let ends = if !self.lvm && value {
                    &WORD_ENDS_STRICT_VALUE
                } else {
                    &WORD_ENDS
                };
                while let Some(&ch) = self.b.get(i) {
                    if ends[usize::from(ch)] {
                        break;
                    }
                    i += 1;
                }
                self.pos = i;
                let word = self.string(start, i, at)?;
                if self.lvm && !value {
                    Ok((Tok::Ident(word), at))
                } else {
                    Ok((Tok::Word(word), at))
                }
            }
        }
    }
}

/// The bytes that end a word: white space (with `\v`), `#`, `=`, `{` and `}`; in
/// [`WORD_ENDS_STRICT_VALUE`] also `,`, `[` and `]`.
const fn word_ends(strict_value: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_whitespace()
            || b == 0x0b
            || matches!(b, b'#' | b'=' | b'{' | b'}')
            || (strict_value && matches!(b, b',' | b'[' | b']'));
        c += 1;
    }
    t
}

static WORD_ENDS: [bool; 256] = word_ends(false);
static WORD_ENDS_STRICT_VALUE: [bool; 256] = word_ends(true);

/// Reads an integer the way `strtoll(s, NULL, 0)` does for the characters LVM's tokenizer
/// lets through: optional sign, then decimal, or octal after a leading `0`. Unlike strtoll,
/// a token that is not wholly a number, or is out of range, is an error.
fn parse_int(text: &str) -> Result<i64, SyntaxError> {
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(SyntaxError::BadNumber(text.to_owned()));
    }
    let (radix, body) = if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let magnitude = u64::from_str_radix(body, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => SyntaxError::IntegerOutOfRange(text.to_owned()),
        _ => SyntaxError::BadNumber(text.to_owned()),
    })?;
    let v = if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    v.ok_or_else(|| SyntaxError::IntegerOutOfRange(text.to_owned()))
}

fn parse_float(text: &str) -> Result<f64, SyntaxError> {
    let body = text.trim_start_matches(['+', '-']);
    if !body.bytes().any(|b| b.is_ascii_digit()) {
        return Err(SyntaxError::BadNumber(text.to_owned()));
    }
    // Rust's parser takes "1." and ".5", as strtod does.
    text.parse::<f64>()
        .map_err(|_| SyntaxError::BadNumber(text.to_owned()))
}

struct Parser<'a> {
    lx: Lexer<'a>,
    tok: Tok,
    at: Pos,
}

impl Parser<'_> {
    fn advance(&mut self, value: bool) -> Result<(), TextError> {
        let (t, at) = self.lx.next(value)?;
        self.tok = t;
        self.at = at;
        Ok(())
    }

    fn err(&self, kind: SyntaxError) -> TextError {
        self.lx.err(self.at, kind)
    }

    /// Entries until `}` (when `name` is a section) or the end of the text (the root).
    fn entries(&mut self, name: Option<&str>, depth: usize) -> Result<Section, TextError> {
        // LVM's LV and segment sections hold 5 to 8 entries: room for them at once.
        let mut sec = Section {
            entries: Vec::with_capacity(8),
        };
        // Where the keys of a large section are (see `KeyIndex`).
        let mut index = None;
        loop {
            let key_at = self.at;
            let key = match std::mem::replace(&mut self.tok, Tok::Eof) {
                Tok::Eof => match name {
                    None => return Ok(sec),
                    Some(n) => return Err(self.err(SyntaxError::UnclosedSection(n.to_owned()))),
                },
                Tok::Close => match name {
                    Some(_) => {
                        self.advance(false)?;
                        return Ok(sec);
                    }
                    None => return Err(self.err(SyntaxError::UnbalancedClose)),
                },
                Tok::Word(w) | Tok::Str(w) | Tok::Ident(w) => w,
                other => return Err(self.err(SyntaxError::ExpectedKey(describe(&other)))),
            };
            if key.is_empty() {
                return Err(self.lx.err(key_at, SyntaxError::EmptyKey));
            }
            if key.contains('/') {
                return Err(self.lx.err(key_at, SyntaxError::SlashInKey(key)));
            }
            if KeyIndex::duplicate(&sec.entries, &key, &mut index) {
                return Err(self.lx.err(key_at, SyntaxError::DuplicateKey(key)));
            }
            self.advance(false)?;
            let node = match self.tok {
                Tok::Open => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(self.err(SyntaxError::TooDeep));
                    }
                    self.advance(false)?;
                    Node::Section(self.entries(Some(&key), depth + 1)?)
                }
                Tok::Eq => {
                    self.lx.creation_time = key == "creation_time";
                    self.advance(true)?;
                    Node::Value(self.value()?)
                }
                ref other => {
                    return Err(
                        self.err(SyntaxError::ExpectedEqOrBrace(key.clone(), describe(other)))
                    );
                }
            };
            sec.entries.push(Entry { key, node });
        }
    }

    /// A value; on return the next token (after the value) is current.
    fn value(&mut self) -> Result<Value, TextError> {
        if self.tok == Tok::ArrOpen {
            self.advance(true)?;
            let mut items = Vec::new();
            loop {
                match self.tok {
                    Tok::ArrClose => break,
                    Tok::Eof => return Err(self.err(SyntaxError::UnclosedArray)),
                    _ => {}
                }
                items.push(self.scalar()?);
                // rewind's reading lets any value follow a value in an array; LVM's lets only
                // a quoted string follow without a comma (after a value, its tokenizer reads
                // a word or number as a key, and a key is not a value).
                self.advance(!self.lx.lvm)?;
                match self.tok {
                    Tok::Comma => self.advance(true)?,
                    Tok::Eof => return Err(self.err(SyntaxError::UnclosedArray)),
                    _ => {}
                }
            }
            self.advance(false)?;
            Ok(Value::Array(items))
        } else {
            let v = self.scalar()?;
            self.advance(false)?;
            Ok(v)
        }
    }

    /// The current token as a value, moved out (the caller advances next).
    fn scalar(&mut self) -> Result<Value, TextError> {
        match std::mem::replace(&mut self.tok, Tok::Eof) {
            Tok::Int(i) => Ok(Value::Int(i)),
            Tok::Float(f) => Ok(Value::Float(f)),
            Tok::Str(s) | Tok::Word(s) => Ok(Value::Str(s)),
            other => Err(self.err(SyntaxError::ExpectedValue(describe(&other)))),
        }
    }
}

/// Sections up to this many entries look for a repeated key by a linear search; larger ones
/// (`logical_volumes` has one entry per LV) through a [`KeyIndex`], so that a section with
/// millions of keys is not quadratic.
const LINEAR_KEYS: usize = 16;

/// The keys of a large section by hash: each hash names the position of the first key read
/// with it. A hash that is there already is confirmed against the key itself, and when two
/// keys share a hash, by a search of the whole section: a key is never taken for another.
struct KeyIndex {
    hasher: std::collections::hash_map::RandomState,
    at: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<HashIsKey>>,
}

impl KeyIndex {
    /// Whether `key` is among `entries` already; if not, it is recorded as the next entry's.
    fn duplicate(entries: &[Entry], key: &str, index: &mut Option<KeyIndex>) -> bool {
        use std::hash::BuildHasher as _;
        if entries.len() < LINEAR_KEYS {
            return entries.iter().any(|e| e.key == key);
        }
        let ix = index.get_or_insert_with(|| {
            let mut ix = KeyIndex {
                hasher: std::collections::hash_map::RandomState::new(),
                at: std::collections::HashMap::default(),
            };
            for (i, e) in entries.iter().enumerate() {
                ix.at.entry(ix.hasher.hash_one(e.key.as_str())).or_insert(i);
            }
            ix
        });
        match ix.at.entry(ix.hasher.hash_one(key)) {
            std::collections::hash_map::Entry::Occupied(o) => {
                entries[*o.get()].key == key || entries.iter().any(|e| e.key == key)
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(entries.len());
                false
            }
        }
    }
}

/// The hasher of [`KeyIndex`]'s map, whose keys are hashes already.
#[derive(Default)]
struct HashIsKey(u64);

impl std::hash::Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Parses metadata text. The text ends at the first NUL byte, if any, as it does for LVM.
pub fn parse(bytes: &[u8]) -> Result<Section, TextError> {
    parse_with(bytes, false, true)
}

/// [`parse`] for a configuration file that is mostly comments (lvm.conf: 111 KB on Debian,
/// 18 settings): the same tree or the same error, but each token is checked for UTF-8 on its
/// own instead of the whole text first (the comments, never read as tokens, are not looked
/// at byte by byte). [`parse`] already falls back to that for a text that is not UTF-8
/// throughout, so the two read every text alike (pinned by a test).
pub fn parse_config(bytes: &[u8]) -> Result<Section, TextError> {
    parse_with(bytes, false, false)
}

/// Parses metadata text exactly as LVM2's reader does (`libdm/libdm-config.c`, `_get_token`,
/// `_type`, `_dup_string_tok`), where that differs from [`parse`]:
/// - bytes that are not UTF-8 are kept, losslessly: each such byte `b` becomes the character
///   U+10FF00 + `b`, and [`print_bytes`] writes it back as the byte (a text that holds such a
///   character itself is refused, [`SyntaxError::ReservedChar`]);
/// - a word value ends only at white space, `#`, `=`, `{` or `}` (so `[a, b]` is the word
///   `a,` followed by the key `b]`: an error, as for LVM);
/// - in an array, only a quoted string may follow a value without a comma;
/// - a string the text ends inside runs to the end of the text, less its last byte;
/// - a `creation_time` that does not fit in 64 bits reads as 1527120000, LVM's repair.
///
/// Like [`parse`], and unlike LVM, it refuses what LVM would guess at: repeated keys, keys
/// with `/`, numbers that are not wholly numbers (`-`, `09`), and texts over the limits.
pub fn parse_lvm(bytes: &[u8]) -> Result<Section, TextError> {
    parse_with(bytes, true, true)
}

/// What LVM reads a `creation_time` that overflows as (`libdm-config.c`, `_type`).
pub const REPAIRED_CREATION_TIME: i64 = 1_527_120_000;

/// The first of the characters [`parse_lvm`] uses for bytes that are not UTF-8.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// `bytes` as a string, every byte of an invalid UTF-8 sequence mapped to U+10FF00 + byte;
/// `Err` with the character when valid UTF-8 already holds one of U+10FF80..=U+10FFFF.
fn decode_raw(bytes: &[u8]) -> Result<String, char> {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_checked(&mut out, valid)?;
                return Ok(out);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                push_checked(&mut out, std::str::from_utf8(valid).unwrap_or_default())?;
                let bad = e.error_len().unwrap_or(after.len());
                for &b in &after[..bad] {
                    out.push(char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or('\u{FFFD}'));
                }
                rest = &after[bad..];
            }
        }
    }
}

fn push_checked(out: &mut String, valid: &str) -> Result<(), char> {
    if let Some(c) = valid.chars().find(|&c| raw_byte(c).is_some()) {
        return Err(c);
    }
    out.push_str(valid);
    Ok(())
}

/// The byte a character of [`parse_lvm`] stands for, if it stands for one.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = u32::from(c);
    (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xFF)
        .contains(&v)
        .then(|| (v - RAW_BYTE_BASE) as u8)
}

/// A string of [`parse_lvm`] as the bytes it was read from.
pub fn raw_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match raw_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out
}

/// `\"` and `\\` inside a double-quoted string (libdm's `dm_unescape_double_quotes`); any
/// other backslash is kept.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b'"' | b'\\')) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

fn parse_with(bytes: &[u8], lvm: bool, whole_text: bool) -> Result<Section, TextError> {
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(TextError::TooLarge {
            size: bytes.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len());
    let b = &bytes[..end];
    let text = whole_text
        .then(|| std::str::from_utf8(b).ok())
        .flatten()
        .filter(|t| !lvm || t.is_ascii() || !t.chars().any(|c| raw_byte(c).is_some()));
    let mut p = Parser {
        lx: Lexer {
            b,
            pos: 0,
            line: 1,
            line_start: 0,
            lvm,
            creation_time: false,
            text,
        },
        tok: Tok::Eof,
        at: (1, 1),
    };
    p.advance(false)?;
    p.entries(None, 0)
}

/// How to lay the text out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Like `vgcfgbackup` files: tab indentation and blank lines between groups.
    Backup,
    /// Like the copy in a metadata area: the same lines and blank lines, no indentation.
    Disk,
}

/// Prints a tree as LVM would lay it out. Entries are printed in the tree's order.
pub fn print(root: &Section, style: Style) -> String {
    let mut out = String::new();
    print_section(&mut out, root, 0, style, None);
    out
}

/// [`print`] as the bytes to write: every byte [`parse_lvm`] kept as a character is written
/// back as that byte, so text that was not UTF-8 is written as it was read.
pub fn print_bytes(root: &Section, style: Style) -> Vec<u8> {
    raw_bytes(&print(root, style))
}

fn print_section(out: &mut String, sec: &Section, depth: usize, style: Style, name: Option<&str>) {
    let indent = |out: &mut String, d: usize| {
        if style == Style::Backup {
            for _ in 0..d {
                out.push('\t');
            }
        }
    };
    let segment = name.is_some_and(|n| n.starts_with("segment"));
    let mut prev: Option<&Entry> = None;
    for e in &sec.entries {
        {
            let blank = match (&e.node, prev) {
                // Top level: a blank line between groups, as in backup files.
                (_, Some(p)) if depth == 0 => {
                    !(p.key == "contents" && e.key == "version"
                        || p.key == "creation_host" && e.key == "creation_time")
                }
                // Never before the first line of the text: LVM requires an on-disk copy to
                // begin with the VG name ("begins with invalid name").
                (Node::Section(_), _) => depth > 0,
                (Node::Value(_), Some(p)) => {
                    p.key == "device"
                        || (segment
                            && (e.key == "type" || matches!(p.node, Node::Value(Value::Array(_)))))
                        || (segment && e.key == "stripes")
                        || matches!(p.node, Node::Section(_))
                }
                _ => false,
            };
            if blank {
                out.push('\n');
            }
        }
        indent(out, depth);
        write_key(out, &e.key);
        match &e.node {
            Node::Section(s) => {
                out.push_str(" {\n");
                print_section(out, s, depth + 1, style, Some(&e.key));
                if depth == 0 && !s.entries.is_empty() {
                    // LVM ends the VG section with a blank line before its brace.
                    out.push('\n');
                }
                indent(out, depth);
                out.push_str("}\n");
            }
            Node::Value(Value::Array(items)) if e.key == "stripes" && !items.is_empty() => {
                // Stripe lists: one "pvN", extent pair per line, as LVM's export does.
                out.push_str(" = [\n");
                for (k, pair) in items.chunks(2).enumerate() {
                    indent(out, depth + 1);
                    for (j, v) in pair.iter().enumerate() {
                        if j > 0 {
                            out.push_str(", ");
                        }
                        write_scalar(out, v);
                    }
                    if k + 1 < items.len().div_ceil(2) {
                        out.push(',');
                    }
                    out.push('\n');
                }
                indent(out, depth);
                out.push_str("]\n");
            }
            Node::Value(v) => {
                out.push_str(" = ");
                write_value(out, v);
                out.push('\n');
            }
        }
        prev = Some(e);
    }
}

fn key_needs_quotes(key: &str) -> bool {
    key.is_empty()
        || key.bytes().any(|c| {
            c.is_ascii_whitespace()
                || c == 0x0b
                || matches!(
                    c,
                    b'#' | b'=' | b'{' | b'}' | b'"' | b'\'' | b'!' | b'[' | b']' | b','
                )
        })
}

fn write_key(out: &mut String, key: &str) {
    if key_needs_quotes(key) {
        write_str(out, key);
    } else {
        out.push_str(key);
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            // LVM prints "%f"; use it when it reads back exactly, else the shortest exact form.
            let six = format!("{f:.6}");
            if six.parse::<f64>().ok() == Some(*f) {
                out.push_str(&six);
            } else {
                let s = format!("{f}");
                out.push_str(&s);
                if !s.contains('.') {
                    out.push_str(".0");
                }
            }
        }
        Value::Str(s) => write_str(out, s),
        Value::Array(_) => write_value(out, v),
    }
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_scalar(out, item);
            }
            out.push(']');
        }
        other => write_scalar(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Section {
        parse(s.as_bytes()).expect("parses")
    }

    fn kind(s: &[u8]) -> SyntaxError {
        match parse(s) {
            Err(TextError::Syntax { kind, .. }) => kind,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn values_of_every_kind() {
        let t = p(
            "a = 1\nb = -42\nc = 1.5\nd = \"x\\\"y\\\\z\\n\"\ne = 'q\\'\nf = bare\ng = []\nh = [\"a\", 2, 'c' d]\ni = 010\nj = +7\n",
        );
        assert_eq!(t.int("a"), Some(1));
        assert_eq!(t.int("b"), Some(-42));
        assert_eq!(t.value("c"), Some(&Value::Float(1.5)));
        assert_eq!(t.str("d"), Some("x\"y\\z\\n"));
        assert_eq!(t.str("e"), Some("q\\"));
        assert_eq!(t.str("f"), Some("bare"));
        assert_eq!(t.value("g"), Some(&Value::Array(vec![])));
        assert_eq!(
            t.value("h"),
            Some(&Value::Array(vec![
                Value::Str("a".into()),
                Value::Int(2),
                Value::Str("c".into()),
                Value::Str("d".into())
            ]))
        );
        assert_eq!(t.int("i"), Some(8), "strtoll base 0: leading 0 is octal");
        assert_eq!(t.int("j"), Some(7));
    }

    #[test]
    fn arrays_without_commas_and_numbers() {
        let t = p("s = [\"pv0\" 0 \"pv1\" 12]\n");
        assert_eq!(
            t.value("s"),
            Some(&Value::Array(vec![
                Value::Str("pv0".into()),
                Value::Int(0),
                Value::Str("pv1".into()),
                Value::Int(12)
            ]))
        );
    }

    #[test]
    fn sections_comments_order() {
        let t = p("# hdr\nvg {\n  id = \"x\" # c\n  sub { z = 1 y = 2 }\n}\ncontents = \"T\"\n");
        let keys: Vec<_> = t.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["vg", "contents"]);
        let sub = t.section("vg").and_then(|v| v.section("sub")).expect("sub");
        let keys: Vec<_> = sub.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["z", "y"]);
    }

    #[test]
    fn nul_ends_text() {
        let t = parse(b"a = 1\n\0garbage {{{").expect("parses");
        assert_eq!(t.int("a"), Some(1));
    }

    #[test]
    fn quoted_keys() {
        let t = p("\"a#b\" = 1\n'c d' { }\n");
        assert_eq!(t.int("a#b"), Some(1));
        assert!(t.section("c d").is_some());
        assert_eq!(parse(print(&t, Style::Backup).as_bytes()), Ok(t));
    }

    #[test]
    fn errors_are_typed_with_positions() {
        assert_eq!(
            parse(b"a {\n b = 1\n"),
            Err(TextError::Syntax {
                line: 3,
                column: 1,
                kind: SyntaxError::UnclosedSection("a".into())
            })
        );
        assert_eq!(kind(b"a = 1\n}\n"), SyntaxError::UnbalancedClose);
        assert_eq!(kind(b"a = \"abc\n"), SyntaxError::UnterminatedString);
        assert_eq!(kind(b"a = 'abc\n"), SyntaxError::UnterminatedString);
        assert_eq!(kind(b"a = [1, 2\n"), SyntaxError::UnclosedArray);
        assert_eq!(
            kind(b"a = [[1]]\n"),
            SyntaxError::ExpectedValue("'['".into())
        );
        assert_eq!(
            kind(b"a = \n"),
            SyntaxError::ExpectedValue("the end of the text".into())
        );
        assert_eq!(
            kind(b"a 1\n"),
            SyntaxError::ExpectedEqOrBrace("a".into(), "\"1\"".into())
        );
        assert_eq!(
            kind(b"a = 1\na = 2\n"),
            SyntaxError::DuplicateKey("a".into())
        );
        assert_eq!(
            kind(b"s { }\ns { }\n"),
            SyntaxError::DuplicateKey("s".into())
        );
        // Duplicates are found in small and large sections, at the start, middle and end.
        for n in [1, 15, 16, 21, 1000] {
            for dup in [0, n / 2, n - 1] {
                let mut text: String = (0..n).map(|i| format!("k{i} = {i}\n")).collect();
                text.push_str(&format!("k{dup} = 0\n"));
                assert_eq!(
                    kind(text.as_bytes()),
                    SyntaxError::DuplicateKey(format!("k{dup}")),
                    "{n} keys, duplicate of k{dup}"
                );
                let ok: String = (0..n + 3).map(|i| format!("s{i} {{ a = 1 }}\n")).collect();
                assert_eq!(parse(ok.as_bytes()).map(|t| t.entries.len()), Ok(n + 3));
            }
        }
        assert_eq!(kind(b"a/b = 1\n"), SyntaxError::SlashInKey("a/b".into()));
        assert_eq!(
            kind(b"a = 99999999999999999999\n"),
            SyntaxError::IntegerOutOfRange("99999999999999999999".into())
        );
        assert_eq!(kind(b"a = -\n"), SyntaxError::BadNumber("-".into()));
        assert_eq!(kind(b"a = 09\n"), SyntaxError::BadNumber("09".into()));
        assert_eq!(kind(b"a = \"\xff\"\n"), SyntaxError::NotUtf8);
        assert_eq!(kind(b"\xc3\x28 = 1\n"), SyntaxError::NotUtf8);
        assert_eq!(kind(b"= 1\n"), SyntaxError::ExpectedKey("'='".into()));
        assert_eq!(kind(b"\"\" = 1\n"), SyntaxError::EmptyKey);
    }

    #[test]
    fn key_index_never_takes_a_key_for_another() {
        let entries: Vec<Entry> = (0..LINEAR_KEYS + 4)
            .map(|i| Entry {
                key: format!("k{i}"),
                node: Node::Value(Value::Int(0)),
            })
            .collect();
        let mut index = None;
        assert!(KeyIndex::duplicate(&entries, "k3", &mut index));
        assert!(!KeyIndex::duplicate(&entries, "new", &mut index));
        // Two keys sharing a hash: point every hash at an entry with another key.
        let ix = index.as_mut().expect("built past LINEAR_KEYS");
        for at in ix.at.values_mut() {
            *at = 0;
        }
        for key in ["k0", "k1", "k7", "k19"] {
            assert!(KeyIndex::duplicate(&entries, key, &mut index), "{key}");
        }
        let ix = index.as_mut().expect("built");
        let h = std::hash::BuildHasher::hash_one(&ix.hasher, "other");
        ix.at.insert(h, 5);
        assert!(!KeyIndex::duplicate(&entries, "other", &mut index));
    }

    #[test]
    fn error_message_is_lowercase_and_positioned() {
        let e = parse(b"vg {\n\tid = \"x\n").expect_err("fails");
        assert_eq!(
            e.to_string(),
            "metadata text line 2 column 7: unterminated string"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut s = Vec::new();
        for _ in 0..100_000 {
            s.extend_from_slice(b"a {");
        }
        assert_eq!(kind(&s), SyntaxError::TooDeep);
        let mut ok = String::new();
        for _ in 0..MAX_DEPTH {
            ok.push_str("a {");
        }
        for _ in 0..MAX_DEPTH {
            ok.push('}');
        }
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn size_is_bounded() {
        let big = vec![b' '; MAX_TEXT_BYTES + 1];
        assert!(matches!(parse(&big), Err(TextError::TooLarge { .. })));
    }

    #[test]
    fn parse_config_reads_every_text_as_parse_does() {
        // lvm.conf's shape: sections of settings among many comment lines (one of them not
        // UTF-8), indented with tabs.
        let mut conf = Vec::new();
        for (sec, keys) in [
            ("config", 3),
            ("devices", 9),
            ("global", 4),
            ("activation", 2),
        ] {
            conf.extend_from_slice(
                format!("# Configuration section {sec}.\n{sec} {{\n").as_bytes(),
            );
            for k in 0..keys {
                for line in 0..12 {
                    conf.extend_from_slice(
                        format!("\t# Setting {k}, line {line} of its help.\n").as_bytes(),
                    );
                }
                conf.extend_from_slice(b"\t# \xff\xfe a comment that is not UTF-8\n\t#\n");
                conf.extend_from_slice(
                    format!("\tk{k} = \"v{k} # not a comment\" # one\n\n").as_bytes(),
                );
            }
            conf.extend_from_slice(b"\tfilter = [ \"a|^/dev/vd.*|\", \"r|.*|\" ]\n}\n\n");
        }
        let conf = conf.as_slice();
        let mut texts: Vec<Vec<u8>> = vec![
            conf.to_vec(),
            b"a = \"\xff\"\n".to_vec(),
            b"\xc3\x28 = 1\n".to_vec(),
            b"# \xff not UTF-8 in a comment\na = \"\xc3\xa9\"\n".to_vec(),
            b"a = \"\xc3\xa9\" # \xc3\n".to_vec(),
            b"s { k = [\"x\", \"\xe2\x82\xac\"] }\n".to_vec(),
        ];
        // Every prefix of a realistic text and byte flips of lvm.conf (comments included).
        let vg = include_bytes!("../../tests/fixtures/text/backup.vg");
        texts.extend((0..vg.len()).step_by(7).map(|end| vg[..end].to_vec()));
        let mut b = conf.to_vec();
        let mut x: u32 = 777;
        for _ in 0..300 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x as usize >> 3) % b.len();
            let old = b[i];
            b[i] = b"\xff\xc3\"#\n{}[]=,a0"[(x >> 16) as usize % 12];
            texts.push(b.clone());
            b[i] = old;
        }
        for t in &texts {
            assert_eq!(parse_config(t), parse(t), "{}", String::from_utf8_lossy(t));
        }
        assert!(parse_config(conf).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: every prefix of a realistic text, and byte flips.
        let text = include_str!("../../tests/fixtures/text/backup.vg");
        for end in 0..text.len() {
            let _ = parse(&text.as_bytes()[..end]);
        }
        let mut b = text.as_bytes().to_vec();
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x as usize >> 3) % b.len();
            let old = b[i];
            b[i] = (x >> 16) as u8;
            let _ = parse(&b);
            b[i] = old;
        }
    }

    #[test]
    fn round_trip_fixture_both_styles() {
        for text in [
            include_str!("../../tests/fixtures/text/backup.vg"),
            include_str!("../../tests/fixtures/text/disk.vg"),
        ] {
            let t = p(text);
            for style in [Style::Backup, Style::Disk] {
                let printed = print(&t, style);
                assert_eq!(parse(printed.as_bytes()), Ok(t.clone()), "{printed}");
            }
        }
    }

    #[test]
    fn prints_like_lvm() {
        let t = p(include_str!("../../tests/fixtures/text/backup.vg"));
        let printed = print(&t, Style::Backup);
        assert!(
            printed.starts_with(
                "contents = \"Text Format Volume Group\"\nversion = 1\n\ndescription = "
            )
        );
        assert!(printed.contains("\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"));
        assert!(printed.contains("\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 0\n\t\t\t\t]\n"));
        let disk = print(&t, Style::Disk);
        assert!(!disk.contains('\t'));
        // Without comments, LVM's own texts are exactly what rewind prints.
        let uncommented = |s: &str| -> String {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split('#').next().unwrap_or("").trim_end())
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        };
        let lvm_backup = include_str!("../../tests/fixtures/text/backup.vg");
        assert_eq!(uncommented(&printed), uncommented(lvm_backup));
        let lvm_disk = include_str!("../../tests/fixtures/text/disk.vg");
        let disk = print(&p(lvm_disk), Style::Disk);
        assert_eq!(uncommented(&disk), uncommented(lvm_disk));
    }

    #[test]
    fn floats_print_and_reparse() {
        for f in [0.5, -1.25, 1.0, 0.1 + 0.2, 123456.789] {
            let mut t = Section::default();
            t.set("f", Value::Float(f));
            assert_eq!(parse(print(&t, Style::Disk).as_bytes()), Ok(t));
        }
    }

    #[test]
    fn disk_text_begins_with_the_vg_name() {
        let tree =
            parse(b"vg0 {\nid = \"x\"\nseqno = 1\n}\ncontents = \"Text Format Volume Group\"\n")
                .expect("parse");
        assert!(print(&tree, Style::Disk).starts_with("vg0 {\n"));
        assert!(print(&tree, Style::Backup).starts_with("vg0 {\n"));
    }

    #[test]
    fn lvm_reading_keeps_bytes_that_are_not_utf8() {
        let text = b"vg {\nid = \"x\"\n}\ndescription = \"caf\xe9 \xc3\x28\"\ncreation_host = \"h\xff\"\nn\xfete = 1\n";
        assert_eq!(
            kind(text),
            SyntaxError::NotUtf8,
            "rewind's strict reading refuses them"
        );
        let t = parse_lvm(text).expect("LVM's reading keeps them");
        let d = t.str("description").expect("description");
        assert_eq!(raw_bytes(d), b"caf\xe9 \xc3\x28");
        assert!(t.get(&decode_raw(b"n\xfete").expect("key")).is_some());
        // Printed back byte for byte.
        let printed = print_bytes(&t, Style::Disk);
        assert_eq!(parse_lvm(&printed), Ok(t.clone()));
        assert!(printed.windows(4).any(|w| w == b"h\xff\"\n"));
        // A character rewind uses for a byte, in valid UTF-8, is refused.
        let reserved = "a = \"\u{10FFE9}\"\n";
        assert_eq!(
            parse_lvm(reserved.as_bytes()).map_err(|e| match e {
                TextError::Syntax { kind, .. } => kind,
                other => panic!("{other:?}"),
            }),
            Err(SyntaxError::ReservedChar('\u{10FFE9}'))
        );
        assert_eq!(
            parse(reserved.as_bytes()).map(|t| t.str("a").map(str::to_owned)),
            Ok(Some("\u{10FFE9}".to_owned()))
        );
    }

    #[test]
    fn lvm_reading_tokenizes_as_lvm() {
        let lvm = |s: &str| parse_lvm(s.as_bytes());
        // Words end only at space, '#', '=', '{', '}'.
        assert!(lvm("a = [x, y]\n").is_err());
        assert!(lvm("a = [x]\nb = 1\n").is_err());
        assert_eq!(
            lvm("a = x,y\n").map(|t| t.str("a").map(str::to_owned)),
            Ok(Some("x,y".to_owned()))
        );
        // Only a quoted string may follow a value without a comma.
        assert!(lvm("s = [\"pv0\" 0]\n").is_err());
        assert!(lvm("s = [1 2]\n").is_err());
        let t = lvm("s = [\"a\" \"b\", 'c' \"d\",]\n").expect("strings need no commas");
        assert_eq!(
            t.value("s").and_then(Value::as_str_array),
            Some(vec!["a", "b", "c", "d"])
        );
        // A string the text ends inside runs to the end, less its last byte.
        let t = lvm("a = 1\nd = \"cut off").expect("as LVM");
        assert_eq!(t.str("d"), Some("cut of"));
        let t = lvm("a = 1\nd = 'x").expect("as LVM");
        assert_eq!(t.str("d"), Some(""));
        assert!(lvm("a = 1\nd = \"").is_err());
        assert!(
            parse(b"a = 1\nd = \"cut off").is_err(),
            "rewind's own reading refuses it"
        );
        // creation_time overflow is LVM's repair; other keys still overflow.
        let t = lvm("creation_time = 99999999999999999999\n").expect("repaired");
        assert_eq!(t.int("creation_time"), Some(REPAIRED_CREATION_TIME));
        assert!(lvm("seqno = 99999999999999999999\n").is_err());
        // Numbers that are not wholly numbers, repeated keys and '/' stay refused.
        assert!(lvm("a = -\n").is_err());
        assert!(lvm("a = 09\n").is_err());
        assert!(lvm("a = 1\na = 2\n").is_err());
        assert!(lvm("a/b = 1\n").is_err());
        // The fixtures read the same both ways.
        for text in [
            include_str!("../../tests/fixtures/text/backup.vg"),
            include_str!("../../tests/fixtures/text/disk.vg"),
        ] {
            assert_eq!(parse_lvm(text.as_bytes()), parse(text.as_bytes()));
        }
    }
}
