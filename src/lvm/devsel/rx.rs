//! LVM's regex dialect (`libdm/regex`), translated into the `regex` crate's byte syntax with
//! the same meaning; see the module documentation of `lvm::devsel`.

use std::fmt::Write as _;

/// Marker bytes LVM's matcher feeds before and after a name (`parse_rx.h`).
pub(super) const HAT: u8 = 0x02;
pub(super) const DOLLAR: u8 = 0x03;

/// Translates one LVM regex into the `regex` crate's byte syntax with the same meaning when
/// searched in a name framed by [`HAT`] and [`DOLLAR`].
pub(super) fn translate(re: &[u8]) -> Result<String, String> {
    let mut p = RxParser {
        b: re,
        pos: 0,
        depth: 0,
    };
    let out = p.or()?;
    match p.peek() {
        None => Ok(format!("(?s-u){out}")),
        Some(b')') => Err("unbalanced ')'".into()),
        Some(c) => Err(format!("unexpected '{}'", c as char)),
    }
}

struct RxParser<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Deepest nesting of parentheses accepted in a pattern (bounds the parser's recursion).
const MAX_GROUP_DEPTH: usize = 32;

/// A 256-bit byte set.
type ByteSet = [bool; 256];

fn class(set: &ByteSet) -> String {
    let mut out = String::from("[");
    let mut i = 0usize;
    let mut any = false;
    while i < 256 {
        if set[i] {
            let start = i;
            while i + 1 < 256 && set[i + 1] {
                i += 1;
            }
            any = true;
            let _ = write!(out, "\\x{start:02x}-\\x{i:02x}");
        }
        i += 1;
    }
    if !any {
        // An empty set matches nothing, as in LVM.
        return "[^\\x00-\\xff]".into();
    }
    out.push(']');
    out
}

impl RxParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn or(&mut self) -> Result<String, String> {
        let mut alternatives = vec![self.cat()?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            alternatives.push(self.cat().map_err(|e| format!("badly formed '|': {e}"))?);
        }
        Ok(format!("(?:{})", alternatives.join("|")))
    }

    fn cat(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some(b'|') | Some(b')') => break,
                _ => out.push_str(&self.closure()?),
            }
        }
        if out.is_empty() {
            return Err(match self.peek() {
                None => "empty expression".into(),
                Some(c) => format!("empty expression before '{}'", c as char),
            });
        }
        Ok(out)
    }

    fn closure(&mut self) -> Result<String, String> {
        let mut term = self.term()?;
        let mut ops = 0;
        while let Some(op @ (b'*' | b'+' | b'?')) = self.peek() {
            self.pos += 1;
            ops += 1;
            if ops > MAX_GROUP_DEPTH {
                return Err(format!(
                    "more than {MAX_GROUP_DEPTH} repetition operators in a row"
                ));
            }
            term = format!("(?:{term}){}", op as char);
        }
        Ok(term)
    }

    fn term(&mut self) -> Result<String, String> {
        let Some(c) = self.peek() else {
            return Err("unexpected end".into());
        };
        self.pos += 1;
        let mut set = [false; 256];
        match c {
            b'(' => {
                if self.depth >= MAX_GROUP_DEPTH {
                    return Err(format!("more than {MAX_GROUP_DEPTH} nested groups"));
                }
                self.depth += 1;
                let inner = self.or();
                self.depth -= 1;
                let inner = inner?;
                if self.peek() != Some(b')') {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                return Ok(format!("(?:{inner})"));
            }
            b'*' | b'+' | b'?' => return Err(format!("'{}' follows nothing", c as char)),
            b'[' => return self.bracket(),
            b'^' => set[HAT as usize] = true,
            b'$' => set[DOLLAR as usize] = true,
            b'.' => {
                set = [true; 256];
                for b in [b'\n', b'\r', 0] {
                    set[b as usize] = false;
                }
            }
            b'\\' => {
                let Some(e) = self.peek() else {
                    return Err("'\\' at the end".into());
                };
                self.pos += 1;
                set[unescape(e) as usize] = true;
            }
            other => set[other as usize] = true,
        }
        Ok(class(&set))
    }

    fn bracket(&mut self) -> Result<String, String> {
        let mut set: ByteSet = [false; 256];
        let neg = self.peek() == Some(b'^');
        if neg {
            self.pos += 1;
        }
        let mut last: Option<u8> = None;
        loop {
            let Some(mut c) = self.peek() else {
                return Err("missing ']'".into());
            };
            if c == b']' {
                self.pos += 1;
                break;
            }
            let mut range_from = None;
            if c == b'\\' {
                self.pos += 1;
                c = unescape(self.peek().ok_or("'\\' at the end")?);
            } else if c == b'-' && last.is_some() {
                self.pos += 1;
                c = self.peek().ok_or("incomplete range")?;
                range_from = last;
            }
            if !c.is_ascii() {
                return Err("non-ascii byte in a bracket expression".into());
            }
            let (lo, hi) = match range_from {
                Some(l) if l > c => (c, l),
                Some(l) => (l, c),
                None => (c, c),
            };
            for b in lo..=hi {
                set[b as usize] = true;
            }
            self.pos += 1;
            last = Some(c);
        }
        if neg {
            for b in set.iter_mut() {
                *b = !*b;
            }
            set[0] = false;
        }
        Ok(class(&set))
    }
}

fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        other => other,
    }
}
