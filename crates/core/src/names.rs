//! Flow names chosen on the command line: `push --flow` and `diff --flow` take flow names with
//! `*` (any run of characters, including none) and `?` (exactly one character) globs, matched
//! case-sensitively against the whole name. There is no escape: a flow whose name contains `*`
//! or `?` is matched by a pattern that has a wildcard there.
//!
//! ```
//! use flowpack_core::names::NameFilter;
//! let f = NameFilter::new(["Shopify *", "Stock sync"]);
//! assert!(f.matches("Shopify > NetSuite Orders"));
//! assert!(f.matches("Stock sync"));
//! assert!(!f.matches("shopify > NetSuite Orders"));
//! assert!(NameFilter::default().matches("anything"));
//! ```
//!
//! The one rule for the name a replacing push gives the flow it renames aside is here too:
//! [`replaced_original`] and [`is_replaced_name`] match
//! `^(?P<name>.*) \(replaced \d{8}T\d{6}Z\)(-\d+)?$`.

/// The part of the replaced-flow name after the original name: ` (replaced yyyymmddThhmmssZ)`.
const REPLACED_TAIL_LEN: usize = " (replaced 20261129T120000Z)".len();

/// When `name` is what a replacing push left behind — `<name> (replaced yyyymmddThhmmssZ)`,
/// optionally followed by `-N` — the original `<name>` (which may be empty; like the pattern's
/// `.`, it holds no line feed).
pub fn replaced_original(name: &str) -> Option<&str> {
    let core = match name.rsplit_once('-') {
        Some((core, n))
            if !name.ends_with(')') && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            core
        }
        _ => name,
    };
    let split = core.len().checked_sub(REPLACED_TAIL_LEN)?;
    if !core.is_char_boundary(split) {
        return None;
    }
    let (original, tail) = core.split_at(split);
    let stamp = tail
        .strip_prefix(" (replaced ")?
        .strip_suffix("Z)")?
        .as_bytes();
    let shape = stamp.len() == 15
        && stamp[..8].iter().all(u8::is_ascii_digit)
        && stamp[8] == b'T'
        && stamp[9..].iter().all(u8::is_ascii_digit);
    (shape && !original.contains('\n')).then_some(original)
}

/// Whether `name` is what a replacing push left behind (see [`replaced_original`]).
pub fn is_replaced_name(name: &str) -> bool {
    replaced_original(name).is_some()
}

/// Whether `name` matches the glob `pattern` (`*`, `?`; case-sensitive, whole name).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice, never
    // exponential.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A set of name patterns; empty means "every flow".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    patterns: Vec<String>,
}

impl NameFilter {
    /// A filter of these patterns (an empty list matches every name).
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> NameFilter {
        NameFilter {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether no pattern was given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `name` matches any pattern (or no pattern was given).
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| glob_match(p, name))
    }

    /// The patterns that match none of `names`, in the order given: worth a warning (a typo
    /// in `--flow` would otherwise select nothing silently).
    pub fn unmatched<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) -> Vec<&str> {
        self.patterns
            .iter()
            .filter(|p| !names.clone().into_iter().any(|n| glob_match(p, n)))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_case_sensitively() {
        assert!(glob_match("Orders", "Orders"));
        assert!(!glob_match("Orders", "Orders 2"));
        assert!(!glob_match("orders", "Orders"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything at all"));
        assert!(glob_match("Order?", "Orders"));
        assert!(!glob_match("Order?", "Order"));
        assert!(glob_match("S*y > *", "Shopify > NetSuite"));
        assert!(glob_match("*sync", "Stock sync"));
        assert!(!glob_match("*sync", "Stock sync 2"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("Ä?*", "Äöü"));
        // Many stars against a long non-matching name stays fast (no exponential backtracking).
        let long = "a".repeat(2000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn replaced_names_follow_the_one_rule() {
        assert_eq!(
            replaced_original("Orders (replaced 20261129T120000Z)"),
            Some("Orders")
        );
        assert_eq!(
            replaced_original("Orders (replaced 20261129T120000Z)-2"),
            Some("Orders")
        );
        assert_eq!(
            replaced_original("A (replaced 20250101T000000Z) (replaced 20261129T120000Z)-17"),
            Some("A (replaced 20250101T000000Z)")
        );
        assert_eq!(replaced_original(" (replaced 20261129T120000Z)"), Some(""));
        assert_eq!(
            replaced_original("Ä-1 (replaced 20261129T120000Z)"),
            Some("Ä-1")
        );
        for no in [
            "Orders",
            "Orders-2",
            "Orders (replaced by Invoices)",
            "Orders (replaced 2026-11-29)",
            "Orders (replaced yesterday)",
            "Orders (replaced 20261129T120000Z) 2",
            "Orders (replaced 20261129T120000Z)-",
            "Orders (replaced 20261129T120000Z)-x",
            "Orders (replaced 20261129T120000Z-2)",
            "Orders (replaced 20261129T120000)",
            "Orders(replaced 20261129T120000Z)",
            "Or\nders (replaced 20261129T120000Z)",
            "(replaced 20261129T120000Z)",
            "ääääääääääääääääääääääääääääää",
        ] {
            assert!(!is_replaced_name(no), "{no:?}");
        }
    }

    #[test]
    fn filter_reports_patterns_that_select_nothing() {
        let f = NameFilter::new(["Stock*", "Ordrs"]);
        let names = ["Stock sync", "Orders"];
        assert!(f.matches("Stock sync"));
        assert!(!f.matches("Orders"));
        assert_eq!(f.unmatched(names.iter().copied()), ["Ordrs"]);
        assert!(NameFilter::default().is_empty());
    }
}
