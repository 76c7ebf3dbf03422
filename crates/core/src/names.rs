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
    fn filter_reports_patterns_that_select_nothing() {
        let f = NameFilter::new(["Stock*", "Ordrs"]);
        let names = ["Stock sync", "Orders"];
        assert!(f.matches("Stock sync"));
        assert!(!f.matches("Orders"));
        assert_eq!(f.unmatched(names.iter().copied()), ["Ordrs"]);
        assert!(NameFilter::default().is_empty());
    }
}
