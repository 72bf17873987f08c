//! pacman's version order (libalpm's `alpm_pkg_vercmp`, the rpm algorithm): `[EPOCH:]VERSION
//! [-RELEASE]`, epochs compared first, then versions, then releases when both have one. Each
//! part is compared segment by segment: runs of digits numerically, runs of letters as text,
//! a digit run beating a letter run; a longer separator run wins; at the end a leftover
//! letter run loses to nothing ("1.0a" < "1.0") and anything else wins.

use std::cmp::Ordering;

/// Two versions in pacman's order.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (ea, va, ra) = evr(a);
    let (eb, vb, rb) = evr(b);
    segments(ea, eb)
        .then_with(|| segments(va, vb))
        .then_with(|| match (ra, rb) {
            (Some(x), Some(y)) => segments(x, y),
            _ => Ordering::Equal,
        })
}

/// Epoch (`0` when none), version, release.
fn evr(s: &str) -> (&str, &str, Option<&str>) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
        (&s[..digits], &s[digits + 1..])
    } else {
        ("0", s)
    };
    let epoch = if epoch.is_empty() { "0" } else { epoch };
    match rest.rfind('-') {
        Some(i) => (epoch, &rest[..i], Some(&rest[i + 1..])),
        None => (epoch, rest, None),
    }
}

/// rpmvercmp over one part.
fn segments(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (si, sj) = (i, j);
        while i < a.len() && !a[i].is_ascii_alphanumeric() {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        if i == a.len() || j == b.len() {
            break;
        }
        if i - si != j - sj {
            return (i - si).cmp(&(j - sj));
        }
        let numeric = a[i].is_ascii_digit();
        let run = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                }
            {
                k += 1;
            }
            (start, k)
        };
        let (x0, x1) = run(a, i);
        let (y0, y1) = run(b, j);
        i = x1;
        j = y1;
        if y0 == y1 {
            // Different kinds of segment: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut x, mut y) = (&a[x0..x1], &b[y0..y1]);
        let order = if numeric {
            while x.len() > 1 && x[0] == b'0' {
                x = &x[1..];
            }
            while y.len() > 1 && y[0] == b'0' {
                y = &y[1..];
            }
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    let (ra, rb) = (&a[i..], &b[j..]);
    if ra.is_empty() && rb.is_empty() {
        return Ordering::Equal;
    }
    let alpha = |s: &[u8]| s.first().is_some_and(u8::is_ascii_alphabetic);
    if (ra.is_empty() && !alpha(rb)) || alpha(ra) {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs and what pacman 6.0's `vercmp` printed for them.
    #[test]
    fn as_pacman_orders_them() {
        let cases: &[(&str, &str, i8)] = &[
            ("1.0", "1.0.1", -1),
            ("1.5.0", "1.5.1", -1),
            ("1.0a", "1.0", -1),
            ("1.0alpha", "1.0", -1),
            ("1:1.0", "2.0", 1),
            ("1.0-1", "1.0-2", -1),
            ("1.0.a", "1.0.1", -1),
            ("1.0-1", "1.0", 0),
            ("2-1", "1-1", 1),
            ("1.0.0", "1.0", 1),
            ("1.0..0", "1.0.0", 1),
            ("1.0", "1.0+1", -1),
            ("1_0", "1.0", 0),
            ("a", "b", -1),
            ("1.001", "1.1", 0),
            ("0:1.0", "1.0", 0),
            ("1.0~rc1", "1.0", 1),
            ("1.2.3b", "1.2.3", -1),
            ("r10", "r9", 1),
        ];
        for &(a, b, want) in cases {
            let want = want.cmp(&0);
            assert_eq!(vercmp(a, b), want, "{a} vs {b}");
            assert_eq!(vercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
