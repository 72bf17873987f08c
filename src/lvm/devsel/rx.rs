//! LVM's regex dialect (`libdm/regex`) and the `scan.devices` globs, compiled into a small
//! Thompson automaton over bytes and run breadth-first (a Pike machine without captures):
//! time linear in the name times the pattern, no backtracking, no recursion while matching.
//! LVM's dialect is small (see the module documentation of `lvm::devsel`), so this is the
//! whole engine; a general regex library cost the binary about half a megabyte.

/// Marker bytes LVM's matcher feeds before and after a name (`parse_rx.h`).
pub(super) const HAT: u8 = 0x02;
pub(super) const DOLLAR: u8 = 0x03;

/// Deepest nesting of parentheses accepted in a pattern (bounds the parser's recursion).
const MAX_GROUP_DEPTH: usize = 32;

/// A 256-bit byte set.
type ByteSet = [bool; 256];

/// A parsed pattern.
enum Node {
    /// One byte out of a set.
    Set(Box<ByteSet>),
    Cat(Vec<Node>),
    Alt(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Opt(Box<Node>),
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    /// Consume one byte of set N.
    Byte(u32),
    /// Go on at both.
    Split(u32, u32),
    Jmp(u32),
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(super) struct Program {
    insts: Vec<Inst>,
    sets: Vec<[u64; 4]>,
    /// True for a glob: the whole name must match. False for LVM's regexes: searched anywhere.
    anchored: bool,
}

impl Program {
    /// Compiles one LVM regex. It is searched in a name framed by [`HAT`] and [`DOLLAR`], so
    /// `^` and `$` are ordinary byte sets.
    pub(super) fn lvm(re: &[u8]) -> Result<Program, String> {
        Ok(Program::compile(&lvm_tree(re)?, false))
    }

    /// Compiles a shell-style glob over a whole path: `*` is any run of bytes but `/`, `?`
    /// one byte but `/`, `[...]` a set of ASCII characters with ranges (`[!...]` or
    /// `[^...]` its complement, `]` first is literal, `-` first or last is literal); every
    /// other character stands for itself.
    pub(super) fn glob(glob: &str) -> Result<Program, String> {
        Ok(Program::compile(&glob_tree(glob)?, true))
    }

    fn compile(node: &Node, anchored: bool) -> Program {
        let mut p = Program {
            insts: Vec::new(),
            sets: Vec::new(),
            anchored,
        };
        p.emit(node);
        p.insts.push(Inst::Match);
        p
    }

    fn pc(&self) -> u32 {
        // Patterns are bounded by lvm.conf's size (4 MiB), far below u32::MAX instructions.
        u32::try_from(self.insts.len()).unwrap_or(u32::MAX)
    }

    fn push(&mut self, i: Inst) -> usize {
        self.insts.push(i);
        self.insts.len() - 1
    }

    fn emit(&mut self, node: &Node) {
        match node {
            Node::Set(set) => {
                let mut bits = [0u64; 4];
                for (b, _) in set.iter().enumerate().filter(|(_, on)| **on) {
                    bits[b / 64] |= 1 << (b % 64);
                }
                let n = match self.sets.iter().position(|s| *s == bits) {
                    Some(n) => n,
                    None => {
                        self.sets.push(bits);
                        self.sets.len() - 1
                    }
                };
                self.push(Inst::Byte(u32::try_from(n).unwrap_or(u32::MAX)));
            }
            Node::Cat(parts) => parts.iter().for_each(|n| self.emit(n)),
            Node::Alt(alts) => {
                let mut jumps = Vec::new();
                for (k, alt) in alts.iter().enumerate() {
                    if k + 1 == alts.len() {
                        self.emit(alt);
                        break;
                    }
                    let split = self.push(Inst::Split(self.pc() + 1, 0));
                    self.emit(alt);
                    jumps.push(self.push(Inst::Jmp(0)));
                    self.insts[split] = Inst::Split(split as u32 + 1, self.pc());
                }
                let end = self.pc();
                for j in jumps {
                    self.insts[j] = Inst::Jmp(end);
                }
            }
            Node::Star(inner) => {
                let split = self.push(Inst::Split(self.pc() + 1, 0));
                self.emit(inner);
                self.push(Inst::Jmp(split as u32));
                self.insts[split] = Inst::Split(split as u32 + 1, self.pc());
            }
            Node::Plus(inner) => {
                let start = self.pc();
                self.emit(inner);
                self.push(Inst::Split(start, self.pc() + 1));
            }
            Node::Opt(inner) => {
                let split = self.push(Inst::Split(self.pc() + 1, 0));
                self.emit(inner);
                self.insts[split] = Inst::Split(split as u32 + 1, self.pc());
            }
        }
    }

    /// Whether the pattern matches `text`: the whole of it for a glob; for an LVM regex, a
    /// part of it that only bytes `.` matches precede, as LVM's matcher runs `.*(P)` from
    /// the first byte (so a match never starts after a `\n`, `\r` or NUL).
    pub(super) fn is_match(&self, text: &[u8]) -> bool {
        let n = self.insts.len();
        let end = n - 1; // the one Match instruction
        let mut cur = Threads::new(n);
        let mut next = Threads::new(n);
        let mut stack = Vec::new();
        let mut may_start = !self.anchored;
        self.add(&mut cur, &mut stack, 0);
        for &byte in text {
            if !self.anchored && cur.contains(end) {
                return true;
            }
            next.clear();
            for k in 0..cur.len {
                let pc = cur.dense[k] as usize;
                if let Inst::Byte(s) = self.insts[pc] {
                    let set = &self.sets[s as usize];
                    if set[usize::from(byte / 64)] & (1 << (byte % 64)) != 0 {
                        self.add(&mut next, &mut stack, pc + 1);
                    }
                }
            }
            may_start &= !matches!(byte, b'\n' | b'\r' | 0);
            if may_start {
                self.add(&mut next, &mut stack, 0);
            } else if next.len == 0 {
                return false;
            }
            std::mem::swap(&mut cur, &mut next);
        }
        cur.contains(end)
    }

    /// Adds `pc` and every instruction reachable from it without consuming a byte.
    fn add(&self, list: &mut Threads, stack: &mut Vec<usize>, pc: usize) {
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if !list.insert(pc) {
                continue;
            }
            match self.insts[pc] {
                Inst::Jmp(to) => stack.push(to as usize),
                Inst::Split(a, b) => {
                    stack.push(b as usize);
                    stack.push(a as usize);
                }
                Inst::Byte(_) | Inst::Match => {}
            }
        }
    }
}

fn lvm_tree(re: &[u8]) -> Result<Node, String> {
    let mut p = RxParser {
        b: re,
        pos: 0,
        depth: 0,
    };
    let node = p.or()?;
    match p.peek() {
        None => Ok(node),
        Some(b')') => Err("unbalanced ')'".into()),
        Some(c) => Err(format!("unexpected '{}'", c as char)),
    }
}

fn glob_tree(glob: &str) -> Result<Node, String> {
    let mut not_slash = Box::new([true; 256]);
    not_slash[b'/' as usize] = false;
    let mut parts = Vec::new();
    let b = glob.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        match c {
            b'*' => parts.push(Node::Star(Box::new(Node::Set(not_slash.clone())))),
            b'?' => parts.push(Node::Set(not_slash.clone())),
            b'[' => {
                let (set, next) = glob_bracket(b, i)?;
                parts.push(Node::Set(set));
                i = next;
            }
            c => parts.push(Node::Set(single(c))),
        }
    }
    Ok(Node::Cat(parts))
}

/// A set of instruction indexes with constant-time insert, test and clear (sparse set).
struct Threads {
    dense: Vec<u32>,
    sparse: Vec<u32>,
    len: usize,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            dense: vec![0; n],
            sparse: vec![0; n],
            len: 0,
        }
    }

    fn contains(&self, pc: usize) -> bool {
        let i = self.sparse[pc] as usize;
        i < self.len && self.dense[i] as usize == pc
    }

    /// False when `pc` was in already.
    fn insert(&mut self, pc: usize) -> bool {
        if self.contains(pc) {
            return false;
        }
        self.dense[self.len] = pc as u32;
        self.sparse[pc] = self.len as u32;
        self.len += 1;
        true
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

fn single(c: u8) -> Box<ByteSet> {
    let mut set = Box::new([false; 256]);
    set[c as usize] = true;
    set
}

/// A glob's bracket expression starting after its `[` at `b[i]`: the set and the index after
/// its `]`.
fn glob_bracket(b: &[u8], mut i: usize) -> Result<(Box<ByteSet>, usize), String> {
    let mut set = Box::new([false; 256]);
    let neg = matches!(b.get(i), Some(b'!' | b'^'));
    if neg {
        i += 1;
    }
    let mut first = true;
    // The last single character, which a following `-x` turns into a range.
    let mut last: Option<u8> = None;
    loop {
        let Some(&c) = b.get(i) else {
            return Err("missing ']'".into());
        };
        i += 1;
        if c == b']' && !first {
            break;
        }
        first = false;
        if !c.is_ascii() {
            return Err("non-ascii character in a bracket expression".into());
        }
        if c == b'-'
            && let Some(lo) = last
            && let Some(&hi) = b.get(i).filter(|&&h| h != b']')
        {
            if !hi.is_ascii() {
                return Err("non-ascii character in a bracket expression".into());
            }
            if hi < lo {
                return Err(format!("invalid range {}-{}", lo as char, hi as char));
            }
            for x in lo..=hi {
                set[x as usize] = true;
            }
            i += 1;
            last = None;
            continue;
        }
        set[c as usize] = true;
        last = Some(c);
    }
    if neg {
        for x in set.iter_mut() {
            *x = !*x;
        }
    }
    Ok((set, i))
}

struct RxParser<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

impl RxParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut alternatives = vec![self.cat()?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            alternatives.push(self.cat().map_err(|e| format!("badly formed '|': {e}"))?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Node::Alt(alternatives)
        })
    }

    fn cat(&mut self) -> Result<Node, String> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'|') | Some(b')') => break,
                _ => out.push(self.closure()?),
            }
        }
        if out.is_empty() {
            return Err(match self.peek() {
                None => "empty expression".into(),
                Some(c) => format!("empty expression before '{}'", c as char),
            });
        }
        Ok(if out.len() == 1 {
            out.remove(0)
        } else {
            Node::Cat(out)
        })
    }

    fn closure(&mut self) -> Result<Node, String> {
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
            term = match op {
                b'*' => Node::Star(Box::new(term)),
                b'+' => Node::Plus(Box::new(term)),
                _ => Node::Opt(Box::new(term)),
            };
        }
        Ok(term)
    }

    fn term(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("unexpected end".into());
        };
        self.pos += 1;
        let mut set = Box::new([false; 256]);
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
                return Ok(inner);
            }
            b'*' | b'+' | b'?' => return Err(format!("'{}' follows nothing", c as char)),
            b'[' => return self.bracket(),
            b'^' => set[HAT as usize] = true,
            b'$' => set[DOLLAR as usize] = true,
            b'.' => {
                set = Box::new([true; 256]);
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
        Ok(Node::Set(set))
    }

    fn bracket(&mut self) -> Result<Node, String> {
        let mut set = Box::new([false; 256]);
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
        Ok(Node::Set(set))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(name: &str) -> Vec<u8> {
        let mut v = vec![HAT];
        v.extend_from_slice(name.as_bytes());
        v.push(DOLLAR);
        v
    }

    fn lvm(re: &str, name: &str) -> bool {
        Program::lvm(re.as_bytes())
            .expect("compiles")
            .is_match(&framed(name))
    }

    fn glob(g: &str, path: &str) -> bool {
        Program::glob(g)
            .expect("compiles")
            .is_match(path.as_bytes())
    }

    #[test]
    fn lvm_search_anchors_and_closures() {
        assert!(lvm("sda", "/dev/sda1"));
        assert!(!lvm("^sda", "/dev/sda1"));
        assert!(lvm("^/dev/sda", "/dev/sda1"));
        assert!(!lvm("sda$", "/dev/sda1"));
        assert!(lvm("^/dev/(sd|vd)[a-c]+1?$", "/dev/vdab1"));
        assert!(!lvm("^/dev/(sd|vd)[a-c]+1?$", "/dev/vdd"));
        assert!(lvm("^/dev/x*$", "/dev/"));
        assert!(lvm("((a*)*)*b", "/dev/aaab"));
        assert!(!lvm("((a*)*)*b$", "/dev/aaa"));
        assert!(lvm("(a|b|c)(d|e)", "xxce"));
        assert!(!lvm("(a|b|c)(d|e)", "xxcf"));
        assert!(lvm("a?b?c", "c"));
        assert!(lvm("[]x|y", "y"));
        assert!(!lvm("[]x", "x"));
        // LVM runs `.*(P)` from the first byte, and `.` is not `\n`, `\r`, NUL: no match
        // starts after one of those (checked against libdevmapper).
        assert!(!lvm("b", "a\nb"));
        assert!(!lvm("b", "a\rb"));
        assert!(lvm("b", "ba\n"));
        assert!(lvm("a\nb", "xa\nb"));
        // The empty name: only the markers.
        assert!(lvm("^$", ""));
        assert!(!lvm("^.$", ""));
    }

    #[test]
    fn globs_match_whole_paths() {
        assert!(glob("/dev/vd*", "/dev/vda"));
        assert!(glob("/dev/vd*", "/dev/vd"));
        assert!(!glob("/dev/vd*", "/dev/vd/x"));
        assert!(!glob("/dev/vd", "/dev/vda"));
        assert!(glob("/dev/v?a", "/dev/vda"));
        assert!(!glob("/dev/v?a", "/dev/v/a"));
        assert!(glob("/dev/sd[!a]", "/dev/sdb"));
        assert!(!glob("/dev/sd[!a]", "/dev/sda"));
        assert!(glob("/dev/sd[^a]", "/dev/sdb"));
        assert!(glob("/dev/sd[a-c]", "/dev/sdb"));
        assert!(!glob("/dev/sd[a-c]", "/dev/sdd"));
        assert!(glob("/dev/sd[-a]", "/dev/sd-"));
        assert!(glob("/dev/sd[a-]", "/dev/sd-"));
        assert!(glob("/dev/sd[]]", "/dev/sd]"));
        assert!(glob("/dev/é*", "/dev/éa"));
        assert!(glob("*", ""));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
        assert!(Program::glob("/dev/sd[a").is_err());
        assert!(Program::glob("/dev/sd[c-a]").is_err());
        assert!(Program::glob("/dev/sd[é]").is_err());
    }

    /// `node` in the `regex` crate's byte syntax.
    fn regex_syntax(node: &Node, out: &mut String) {
        use std::fmt::Write as _;
        match node {
            Node::Set(set) => {
                out.push('[');
                let mut any = false;
                for b in 0..256 {
                    if set[b] {
                        any = true;
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                // An empty set matches nothing.
                out.push_str(if any { "]" } else { "^\\x00-\\xff]" });
            }
            Node::Cat(parts) => parts.iter().for_each(|n| {
                out.push_str("(?:");
                regex_syntax(n, out);
                out.push(')');
            }),
            Node::Alt(alts) => {
                out.push_str("(?:");
                for (k, n) in alts.iter().enumerate() {
                    if k > 0 {
                        out.push('|');
                    }
                    out.push_str("(?:");
                    regex_syntax(n, out);
                    out.push(')');
                }
                out.push(')');
            }
            Node::Star(n) | Node::Plus(n) | Node::Opt(n) => {
                out.push_str("(?:");
                regex_syntax(n, out);
                out.push(')');
                out.push(match node {
                    Node::Star(_) => '*',
                    Node::Plus(_) => '+',
                    _ => '?',
                });
            }
        }
    }

    /// A small deterministic generator (xorshift64*), so a failure names its case.
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn string(&mut self, alphabet: &[u8], max: usize) -> Vec<u8> {
            let len = self.below(max + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    /// The automaton against the `regex` crate on the same parse: random LVM patterns over
    /// the dialect's special characters, searched as LVM does (`.*(P)` from the first byte,
    /// so `\n`, `\r` and NUL stop new starts), in random names framed by the markers.
    #[test]
    fn lvm_patterns_agree_with_the_regex_crate() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..8000 {
            let pat = g.string(b"ab/.^$*+?|()[]-\\\nxn", 10);
            let Ok(tree) = lvm_tree(&pat) else { continue };
            let prog = Program::lvm(&pat).expect("the tree compiled");
            let mut re = String::from("(?s-u)\\A[^\\n\\r\\x00]*(?:");
            regex_syntax(&tree, &mut re);
            re.push(')');
            let re = regex::bytes::Regex::new(&re).expect("regex compiles");
            for _ in 0..40 {
                let mut name = vec![HAT];
                name.extend(g.string(b"ab/-x\n\r.\x02\x03\0", 8));
                name.push(DOLLAR);
                let want = re.is_match(&name);
                assert_eq!(
                    prog.is_match(&name),
                    want,
                    "{:?} in {name:?}",
                    pat.escape_ascii().to_string()
                );
                compared += 1;
                matched += usize::from(want);
            }
        }
        eprintln!("{compared} pairs compared, {matched} matches");
        // Both outcomes are well represented.
        assert!(
            compared > 20_000 && matched > compared / 10 && matched < compared * 9 / 10,
            "{compared} {matched}"
        );
    }

    /// The same for globs: the whole path must match.
    #[test]
    fn globs_agree_with_the_regex_crate() {
        let mut g = Gen(0x0123_4567_89ab_cdef);
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..3000 {
            let pat = g.string(b"ab/*?[]!^-", 8);
            let pat = String::from_utf8(pat).expect("ascii");
            let Ok(tree) = glob_tree(&pat) else { continue };
            let prog = Program::glob(&pat).expect("the tree compiled");
            let mut re = String::from("(?s-u)\\A(?:");
            regex_syntax(&tree, &mut re);
            re.push_str(")\\z");
            let re = regex::bytes::Regex::new(&re).expect("regex compiles");
            for _ in 0..40 {
                let path = g.string(b"ab/-!", 6);
                let want = re.is_match(&path);
                assert_eq!(prog.is_match(&path), want, "{pat:?} on {path:?}");
                compared += 1;
                matched += usize::from(want);
            }
        }
        eprintln!("{compared} pairs compared, {matched} matches");
        assert!(compared > 20_000 && matched > 2000, "{compared} {matched}");
    }

    /// Against LVM's own engine: cases judged by libdevmapper's `dm_regex_create` and
    /// `dm_regex_match`, one per line (`PATTERN NAME 0|1` or `PATTERN refused`, each field in
    /// hex, `-` for empty), written by `tests/tools/rxcases.c` (see there). Run with
    /// `REWIND_RX_CASES=FILE cargo test --lib rx -- --ignored`.
    #[test]
    #[ignore = "needs a case file from libdevmapper (REWIND_RX_CASES)"]
    fn lvm_patterns_agree_with_libdevmapper() {
        let path = std::env::var("REWIND_RX_CASES").expect("REWIND_RX_CASES");
        let text = std::fs::read_to_string(&path).expect("case file");
        let unhex = |f: &str| -> Vec<u8> {
            if f == "-" {
                return Vec::new();
            }
            (0..f.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&f[i..i + 2], 16).expect("hex"))
                .collect()
        };
        let (mut agreed, mut both_refuse, mut only_rewind_refuses) = (0, 0, 0);
        let mut bad = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let pat = unhex(f[0]);
            let shown = pat.escape_ascii().to_string();
            match (Program::lvm(&pat), f[1]) {
                (Err(_), "refused") => both_refuse += 1,
                (Ok(_), "refused") => bad.push(format!("{shown:?}: LVM refuses, rewind accepts")),
                (Err(_), _) => only_rewind_refuses += 1,
                (Ok(prog), name) => {
                    let mut framed = vec![HAT];
                    framed.extend(unhex(name));
                    framed.push(DOLLAR);
                    if prog.is_match(&framed) == (f[2] == "1") {
                        agreed += 1;
                    } else {
                        bad.push(format!("{shown:?} on {framed:?}: LVM says {}", f[2]));
                    }
                }
            }
        }
        eprintln!(
            "{agreed} verdicts agree; patterns both refuse: {both_refuse}; \
             cases whose pattern only rewind refuses: {only_rewind_refuses}"
        );
        assert!(
            bad.is_empty(),
            "{} disagreements, first: {:?}",
            bad.len(),
            &bad[..bad.len().min(20)]
        );
        assert!(agreed > 10_000);
    }

    #[test]
    fn long_inputs_stay_linear() {
        // (a*)* over a long run of a's with no b: a backtracking engine would explode.
        let p = Program::lvm(b"(a*)*(a*)*(a*)*b").expect("compiles");
        assert!(!p.is_match(&framed(&"a".repeat(10_000))));
        let g = Program::glob(&"*a".repeat(50)).expect("compiles");
        assert!(!g.is_match(&"a".repeat(49).into_bytes()));
        assert!(g.is_match(&"a".repeat(60).into_bytes()));
    }
}
