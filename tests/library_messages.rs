//! The library crates (core, client, action) name no command-line flag in their messages: they
//! say what is missing in their own terms, and the binary adds the flag as a `hint:` line. This
//! scans the string literals of their non-test sources for `--` followed by a letter.

use std::path::{Path, PathBuf};

/// Literals that must keep a flag-like text, each with the reason. Empty today.
const ALLOWED: &[(&str, &str)] = &[];

/// The string literals of Rust source `src` (comments and `#[cfg(test)]` modules left out), each
/// with its 1-based line.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let bytes: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| bytes.get(i).copied().unwrap_or('\0');
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < bytes.len() && bytes[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == '*' && at(i + 1) == '/') {
                    line += usize::from(bytes[i] == '\n');
                    i += 1;
                }
                i += 2;
            }
            '#' if src_starts(&bytes, i, "#[cfg(test)]") => {
                // Unit tests sit at the bottom of each file: from their module on, test code.
                let mut j = i + "#[cfg(test)]".len();
                while at(j).is_whitespace() {
                    j += 1;
                }
                if src_starts(&bytes, j, "mod ") {
                    break;
                }
                i = j;
            }
            'r' if (at(i + 1) == '"' || at(i + 1) == '#')
                && !at(i.wrapping_sub(1)).is_alphanumeric()
                && at(i.wrapping_sub(1)) != '_' =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while at(j) == '#' {
                    hashes += 1;
                    j += 1;
                }
                if at(j) != '"' {
                    i += 1;
                    continue;
                }
                let start_line = line;
                let mut text = String::new();
                j += 1;
                loop {
                    if j >= bytes.len() {
                        break;
                    }
                    if bytes[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                        j += 1 + hashes;
                        break;
                    }
                    line += usize::from(bytes[j] == '\n');
                    text.push(bytes[j]);
                    j += 1;
                }
                out.push((start_line, text));
                i = j;
            }
            '"' => {
                let start_line = line;
                let mut text = String::new();
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != '"' {
                    if bytes[j] == '\\' {
                        // A line continuation joins the next line without its indentation.
                        if at(j + 1) == '\n' {
                            line += 1;
                            j += 2;
                            while at(j).is_whitespace() {
                                line += usize::from(at(j) == '\n');
                                j += 1;
                            }
                            continue;
                        }
                        text.push(bytes[j]);
                        text.push(at(j + 1));
                        j += 2;
                        continue;
                    }
                    line += usize::from(bytes[j] == '\n');
                    text.push(bytes[j]);
                    j += 1;
                }
                out.push((start_line, text));
                i = j + 1;
            }
            '\'' => {
                // A char literal ('x', '\'', '"') or a lifetime ('a).
                if at(i + 1) == '\\' {
                    let mut j = i + 2;
                    while j < bytes.len() && bytes[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn src_starts(bytes: &[char], i: usize, pat: &str) -> bool {
    pat.chars()
        .enumerate()
        .all(|(k, p)| bytes.get(i + k) == Some(&p))
}

/// Whether `text` names a long flag: `--` followed by a lowercase letter.
fn names_flag(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(3)
        .any(|w| w[0] == '-' && w[1] == '-' && w[2].is_ascii_lowercase())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn library_messages_name_no_flag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for krate in ["core", "client", "action"] {
        rust_files(&root.join("crates").join(krate).join("src"), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "too few library sources: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        for (line, text) in string_literals(&src) {
            if names_flag(&text) && !ALLOWED.iter().any(|(t, _)| *t == text) {
                found.push(format!(
                    "{}:{line}: {text:?}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library string literals name command-line flags (say what is missing instead; the \
         binary adds the flag as a hint):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_finds_flags_in_every_kind_of_literal() {
    let src = r####"
        // "--in-a-comment"
        /* "--in-a-block" */
        let a = '"';
        let b = "plain --flag";
        let c = format!("{x} \
             --continued");
        let d = r#"raw --raw"#;
        fn f<'a>(x: &'a str) -> &'a str { "--after-lifetime" }
        let e = "not a flag: -- x, --9";
        #[cfg(test)]
        mod tests { const T: &str = "--in-tests"; }
    "####;
    let flagged: Vec<(usize, String)> = string_literals(src)
        .into_iter()
        .filter(|(_, t)| names_flag(t))
        .collect();
    let texts: Vec<&str> = flagged.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "plain --flag",
            "{x} --continued",
            "raw --raw",
            "--after-lifetime"
        ]
    );
    assert_eq!(flagged[0].0, 5, "{flagged:?}");
    assert_eq!(flagged[3].0, 9, "{flagged:?}");
}
