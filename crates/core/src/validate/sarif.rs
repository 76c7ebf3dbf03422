//! SARIF 2.1.0 output of validation reports, so CI systems can annotate findings.
//!
//! One run, tool `flowpack` with every rule of [`RULES`]; one result per finding. A finding's
//! JSON pointer is its logical location (`logicalLocations[0].fullyQualifiedName`, kind
//! `member`); the physical location names the file and, when the file's bytes are given, the line
//! the faulty value starts on (found by [`line_of`], a small positional scan of the JSON text).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::{RULES, Report};

/// The SARIF 2.1.0 JSON schema's address.
pub(crate) const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One validated file, for [`sarif_log`].
#[derive(Debug, Clone, Copy)]
pub struct SarifFile<'a> {
    /// The file's path as the user gave it.
    pub path: &'a str,
    /// Its findings.
    pub report: &'a Report,
    /// Its bytes, to give each result a start line (`None`: no line numbers).
    pub source: Option<&'a [u8]>,
}

/// Builds a SARIF 2.1.0 log from validated files.
///
/// ```
/// use flowpack_core::validate::{sarif::{sarif_log, SarifFile}, Finding, Report, Severity};
/// let report = Report { findings: vec![Finding { severity: Severity::Error, code: "FP0301",
///     pointer: "/flow/priority".into(), message: "too high".into(), hint: "1 to 5".into() }] };
/// let source = b"{\n  \"flow\": {\n    \"priority\": 9\n  }\n}\n";
/// let log = sarif_log(&[SarifFile { path: "a.json", report: &report, source: Some(source) }]);
/// assert_eq!(log["version"], "2.1.0");
/// let result = &log["runs"][0]["results"][0];
/// assert_eq!(result["ruleId"], "FP0301");
/// assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 3);
/// ```
pub fn sarif_log(files: &[SarifFile<'_>]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "defaultConfiguration": { "level": r.severity.as_str() },
            })
        })
        .collect();
    let mut results = Vec::new();
    for file in files {
        for f in &file.report.findings {
            let rule_index = RULES
                .iter()
                .position(|r| r.code == f.code)
                .expect("every finding's code is in RULES");
            let mut physical = json!({ "artifactLocation": { "uri": file_uri(file.path) } });
            if let Some(line) = file.source.and_then(|src| line_of(src, &f.pointer)) {
                physical["region"] = json!({ "startLine": line });
            }
            results.push(json!({
                "ruleId": f.code,
                "ruleIndex": rule_index,
                "level": f.severity.as_str(),
                "message": { "text": format!("{} (hint: {})", f.message, f.hint) },
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{
                        "fullyQualifiedName": f.pointer,
                        "kind": "member",
                    }],
                }],
                "properties": { "pointer": f.pointer, "hint": f.hint },
            }));
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "flowpack",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

/// What a relative URI reference's path keeps as is: RFC 3986's unreserved characters, the
/// sub-delimiters, `/`, `:` and `@`; everything else (spaces, `%`, `#`, `?`, non-ASCII) is
/// percent-encoded.
const URI_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=');

/// A file path as a relative URI reference: forward slashes, and the characters a URI cannot
/// hold percent-encoded.
fn file_uri(path: &str) -> String {
    utf8_percent_encode(&path.replace('\\', "/"), URI_PATH).to_string()
}

/// The 1-based line on which the value at `pointer` starts in the JSON text `source`, or `None`
/// when the text is not JSON or holds no such value. With duplicate keys, the first one counts.
pub fn line_of(source: &[u8], pointer: &str) -> Option<usize> {
    let tokens: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut scan = Scanner {
        s: source,
        i: 0,
        line: 1,
    };
    scan.find(&tokens)
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return,
            }
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    /// Reads a string (at `"`), returning its decoded text.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        serde_json::from_slice(self.s.get(start..self.i)?).ok()
    }

    /// Skips one value (after whitespace).
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.skip_ws();
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.skip_value()?;
                    if self.eat(b',').is_none() {
                        return self.eat(close);
                    }
                }
            }
            _ => {
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                }) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Finds the line of the value at `tokens` below the value starting here.
    fn find(&mut self, tokens: &[String]) -> Option<usize> {
        self.skip_ws();
        let Some((first, rest)) = tokens.split_first() else {
            return Some(self.line);
        };
        match self.peek()? {
            b'{' => {
                self.i += 1;
                if self.eat(b'}').is_some() {
                    return None;
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    if &key == first {
                        return self.find(rest);
                    }
                    self.skip_value()?;
                    self.eat(b',')?;
                }
            }
            b'[' => {
                let index: usize = first.parse().ok()?;
                self.i += 1;
                if self.eat(b']').is_some() {
                    return None;
                }
                for _ in 0..index {
                    self.skip_value()?;
                    self.eat(b',')?;
                }
                self.find(rest)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Finding, Severity};

    #[test]
    fn file_uris_keep_path_characters_and_encode_the_rest() {
        assert_eq!(
            file_uri("dir\\a-b_c.~d/x:y@z!$&'()*+,;=.json"),
            "dir/a-b_c.~d/x:y@z!$&'()*+,;=.json"
        );
        assert_eq!(
            file_uri("my flow #1?/100%/ü.json"),
            "my%20flow%20%231%3F/100%25/%C3%BC.json"
        );
    }

    #[test]
    fn results_reference_their_rule_and_point_at_the_value() {
        let report = Report {
            findings: vec![Finding {
                severity: Severity::Warning,
                code: "FP0701",
                pointer: "/metadata/import_summary/imported_resources/flow_steps".into(),
                message: "import_summary says flow_steps is 5".into(),
                hint: "run migrate".into(),
            }],
        };
        let log = sarif_log(&[SarifFile {
            path: "flows/my flow.json",
            report: &report,
            source: None,
        }]);
        let run = &log["runs"][0];
        let result = &run["results"][0];
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "FP0701");
        assert_eq!(
            run["tool"]["driver"]["rules"][index]["defaultConfiguration"]["level"],
            "warning"
        );
        assert_eq!(result["level"], "warning");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "flows/my%20flow.json"
        );
        assert_eq!(
            result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "/metadata/import_summary/imported_resources/flow_steps"
        );
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
        assert!(
            result["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
    }

    #[test]
    fn line_of_finds_where_the_value_starts() {
        let src = br#"{
  "a~b": { "x/y": [1,
    2, {"k": "v\"}\n"},
    [ ] ] },
  "flow": {"versions": [
    {"steps": []},
    {"steps": [
      {"id": 1},
      {"id":
         2}
    ]}
  ]}
}"#;
        assert_eq!(line_of(src, ""), Some(1));
        assert_eq!(line_of(src, "/a~0b"), Some(2));
        assert_eq!(line_of(src, "/a~0b/x~1y/1"), Some(3));
        assert_eq!(line_of(src, "/a~0b/x~1y/3"), Some(4));
        assert_eq!(line_of(src, "/flow/versions/1/steps/1"), Some(9));
        assert_eq!(line_of(src, "/flow/versions/1/steps/1/id"), Some(10));
        assert_eq!(line_of(src, "/flow/versions/2"), None);
        assert_eq!(line_of(src, "/flow/missing"), None);
        assert_eq!(line_of(src, "/a~0b/x~1y/2/k"), Some(3));
        assert_eq!(line_of(b"not json", "/a"), None);
        assert_eq!(line_of(b"{\"a\": 1", "/b"), None);
    }

    #[test]
    fn line_of_agrees_with_the_fixtures() {
        let src = include_bytes!("../../fixtures/validate/v2.many_faults.json");
        let text = std::str::from_utf8(src).unwrap();
        let line = line_of(src, "/flow/priority").unwrap();
        assert_eq!(
            text.lines().nth(line - 1).unwrap().trim(),
            "\"priority\": 9,"
        );
        let line = line_of(src, "/flow/versions/0/schedules/0/cron_string").unwrap();
        assert_eq!(
            text.lines().nth(line - 1).unwrap().trim(),
            "\"cron_string\": \"61 * * * *\""
        );
    }
}
