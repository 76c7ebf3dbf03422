//! Review reports: `diff --format html|markdown`, `inspect --format html|mermaid|dot`, and the
//! HTML report checked in a real browser (Debian's `chromium`, headless).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::util::{code, fixture, stderr, stdout};

const HOSTILE: &str = "<script>alert(1)</script> & \"Orders\"";

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .expect("run flowpack")
}

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap())
        .unwrap()
}

fn write_json(path: &Path, v: &Value) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.to_path_buf()
}

/// RIGHT of a pair: a step changed (script version), one removed (Batch 50), one added with a
/// hostile name, connections rewired, and a credential on RIGHT only.
pub(crate) fn changed(mut d: Value) -> Value {
    let v = &mut d["flow"]["versions"][0];
    v["steps"][4]["config"]["script_version"] = json!(4);
    let steps = v["steps"].as_array_mut().unwrap();
    steps.remove(3);
    steps.push(json!({"id": 7, "type": "map", "name": "<b>Notify & \"log\"</b>", "config": {}}));
    v["connections"] = json!([{"from": 1, "to": 2}, {"from": 3, "to": 5}, {"from": 5, "to": 6}, {"from": 6, "to": 7}]);
    d["systems"][0]["system"]["authentication_implementations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "Extra", "type": "header", "credentials": {"token": "s3cr3t-value"}}));
    d
}

/// left.json and right.json in `d`; RIGHT's flow is named [`HOSTILE`] on both sides.
fn pair(d: &Path) -> (PathBuf, PathBuf) {
    let mut left = reference();
    left["flow"]["name"] = json!(HOSTILE);
    let right = changed(left.clone());
    (
        write_json(&d.join("left.json"), &left),
        write_json(&d.join("right.json"), &right),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn html_report_is_self_contained_escaped_and_marks_steps() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    pair(d);
    let o = run(
        d,
        &[
            "diff",
            "left.json",
            "right.json",
            "--format",
            "html",
            "-o",
            "r.html",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">"
    ));
    // No script at all, and nothing remote.
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    assert!(!html.contains("http://") || !html.contains("src=\"http"));
    assert!(!html.contains("https://"));
    // The sides as given; the summary.
    assert!(html.contains("LEFT <code>left.json</code> → RIGHT <code>right.json</code>"));
    assert!(html.contains("<td>different</td><td>1</td><td>0</td><td>0</td><td>0</td>"));
    // The flow's section, its hostile name escaped.
    assert!(
        html.contains("<section id=\"flow-script-alert-1-script-orders\""),
        "{html}"
    );
    assert!(html.contains("~ &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Orders&quot;"));
    // Steps marked by class, title and symbol.
    assert!(html.contains(
        "<g class=\"step changed\"><title>changed: Normalise order lines (script, step 5)</title>"
    ));
    assert!(html.contains(
        "<g class=\"step removed\"><title>removed: Batch 50 (flow-control, step 4)</title>"
    ));
    assert!(html.contains("<g class=\"step added\"><title>added: &lt;b&gt;Notify &amp; &quot;log&quot;&lt;/b&gt; (map, step 7)</title>"));
    assert!(
        html.contains("<g class=\"step same\"><title>Every 15 minutes (trigger, step 1)</title>")
    );
    assert!(html.contains(">~ Normalise order lines<"));
    assert!(html.contains(">− Batch 50<"));
    assert!(html.contains("stroke-dasharray=\"7 4\""));
    // Only the changed version is drawn.
    assert!(html.contains("iteration 7 (changed)"));
    assert!(!html.contains("iteration 8"));
    // The change table, secrets masked.
    assert!(html.contains("<td><code>/flow/versions/0/steps/3/config/script_version</code></td><td class=\"v\">3</td><td class=\"v\">4</td>"));
    assert!(html.contains("&quot;token&quot;:&quot;••••&quot;"));
    assert!(!html.contains("s3cr3t-value"));
    // Collapsing without script.
    assert!(html.contains("<details open><summary>"));
}

#[test]
fn html_output_refuses_an_existing_file_unless_forced() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    pair(d);
    std::fs::write(d.join("r.html"), "keep").unwrap();
    let args = [
        "diff",
        "left.json",
        "right.json",
        "--format",
        "html",
        "-o",
        "r.html",
    ];
    let o = run(d, &args);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("r.html")).unwrap(), "keep");
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = run(d, &forced);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(d.join("r.html"))
            .unwrap()
            .contains("<svg")
    );
    // A dangling symlink is an existing output too; --force replaces the link, not its target.
    std::os::unix::fs::symlink(d.join("nowhere.html"), d.join("link.html")).unwrap();
    let o = run(
        d,
        &[
            "diff",
            "left.json",
            "right.json",
            "--format",
            "markdown",
            "-o",
            "link.html",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = run(
        d,
        &[
            "diff",
            "left.json",
            "right.json",
            "--format",
            "markdown",
            "-o",
            "link.html",
            "--force",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        !d.join("link.html")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!d.join("nowhere.html").exists());
    // The same sides: exit 0, and the report says so.
    let o = run(d, &["diff", "left.json", "left.json", "--format", "html"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("<td>same</td>"));
    assert!(stdout(&o).contains("Flows the same"));
}

#[test]
fn markdown_report_has_a_summary_table_and_details_per_changed_flow() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    pair(d);
    let o = run(
        d,
        &["diff", "left.json", "right.json", "--format", "markdown"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.contains("| ~ changed | 1 |"), "{md}");
    assert!(md.contains("<details><summary>~ <b>&#60;script&#62;alert(1)&#60;/script&#62; &#38; \"Orders\"</b> (8 changes)</summary>"), "{md}");
    assert!(
        md.contains("| <code>/flow/versions/0/steps/3/config/script&#95;version</code> | 3 | 4 |"),
        "{md}"
    );
    assert!(md.contains("\"token\":\"••••\""));
    assert!(!md.contains("s3cr3t-value"));
    assert!(!md.contains("<script"));
}

#[test]
fn markdown_stays_under_65000_characters_and_says_what_it_left_out() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = reference();
    for i in 0..120 {
        let mut l = base.clone();
        l["flow"]["name"] = json!(format!("Flow {i:03}"));
        let mut r = l.clone();
        // Many long changes per flow.
        for (k, step) in r["flow"]["versions"][0]["steps"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            step["description"] = json!(format!("{k} {}", "x".repeat(300)));
        }
        write_json(&d.join(format!("l/{i}.json")), &l);
        write_json(&d.join(format!("r/{i}.json")), &r);
    }
    let o = run(d, &["diff", "l", "r", "--format", "markdown"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.chars().count() <= 65_000, "{}", md.chars().count());
    assert!(md.contains("| ~ changed | 120 |"));
    assert!(
        md.contains("flows left out** to stay under 65000 characters"),
        "{}",
        &md[md.len() - 300..]
    );
    // Every <details> that was opened is closed.
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
}

#[test]
fn human_output_cannot_go_to_a_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    pair(d);
    let o = run(d, &["diff", "left.json", "right.json", "-o", "x.txt"]);
    assert_eq!(code(&o), 2);
    assert!(!d.join("x.txt").exists());
    let _ = s(d);
}

/// The browser the report tests open: Debian's `chromium`. Missing is a failure naming the
/// install command, never a silent pass.
fn chromium() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("chromium");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "chromium is missing: install it with `scripts/setup-peers` \
         (or `sudo apt-get install -y chromium`)"
    );
}

/// Runs headless Chromium on `page` with networking off and a throwaway profile; `what` is
/// `--dump-dom` or `--screenshot=PNG`.
fn chromium_on(page: &Path, what: &str) -> Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            // No network at all: every host resolves to nothing and every request goes to a
            // proxy that is not there, so the report must show everything from the file alone.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium")
}

/// Two archives of generated flows: ten flows, of which `Flow 2` and `Flow 5` are changed in
/// RIGHT as [`changed`] changes them, `Flow 9` is only in LEFT and `Flow 10` only in RIGHT.
pub(crate) fn generated_archives(d: &Path) -> (PathBuf, PathBuf) {
    let base = reference();
    for i in 1..=10 {
        let mut doc = base.clone();
        doc["flow"]["name"] = json!(format!("Flow {i}"));
        if i != 10 {
            write_json(&d.join(format!("left/{i}.json")), &doc);
        }
        if [2, 5].contains(&i) {
            doc = changed(doc);
        }
        if i != 9 {
            write_json(&d.join(format!("right/{i}.json")), &doc);
        }
    }
    for side in ["left", "right"] {
        let o = run(
            d,
            &[
                "pack",
                side,
                "-o",
                &format!("{side}.flowpack"),
                "--name",
                "app",
                "--version",
                "1.0.0",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    (d.join("left.flowpack"), d.join("right.flowpack"))
}

/// Chromium's PNG: its width, height, and whether its pixels are not all one colour. A minimal
/// decode of 8-bit non-interlaced PNGs (what Chromium writes): the IHDR, the IDAT chunks
/// inflated (flate2), each scanline unfiltered (None, Sub, Up, Average, Paeth), every pixel
/// compared with the first.
fn png_is_not_blank(png: &[u8]) -> (u32, u32, bool) {
    use std::io::Read;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut at = 8;
    let (mut width, mut height, mut bpp) = (0u32, 0u32, 4usize);
    let mut idat = Vec::new();
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(data[8], 8, "8-bit channels");
                bpp = match data[9] {
                    2 => 3,
                    6 => 4,
                    0 => 1,
                    4 => 2,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width as usize * bpp;
    assert_eq!(raw.len(), height as usize * (stride + 1));
    let mut first: Option<Vec<u8>> = None;
    let mut varied = false;
    let mut prev = vec![0u8; stride];
    for line in raw.chunks(stride + 1) {
        let (filter, data) = (line[0], &line[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let b = prev[i];
            let c = if i >= bpp { prev[i - bpp] } else { 0 };
            cur[i] = data[i].wrapping_add(match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            });
        }
        let f = first.get_or_insert_with(|| cur[..bpp].to_vec());
        if cur.chunks(bpp).any(|p| p != &f[..]) {
            varied = true;
        }
        prev = cur;
    }
    (width, height, varied)
}

#[test]
fn chromium_shows_the_report_of_two_generated_archives() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    generated_archives(d);
    let o = run(
        d,
        &[
            "diff",
            "left.flowpack",
            "right.flowpack",
            "--format",
            "html",
            "-o",
            "report.html",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let report = d.join("report.html");
    let o = chromium_on(&report, "--dump-dom");
    assert!(o.status.success(), "{}", stderr(&o));
    let dom = stdout(&o);
    // The summary as the browser parsed it.
    assert!(
        dom.contains("LEFT <code>left.flowpack</code> → RIGHT <code>right.flowpack</code>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>different</td><td>2</td><td>1</td><td>1</td><td>6</td>"),
        "{dom}"
    );
    // Each changed step of each changed flow.
    for flow in ["flow-flow-2", "flow-flow-5"] {
        let at = dom.find(&format!("<section id=\"{flow}\"")).expect(flow);
        let section = &dom[at..at + dom[at..].find("</section>").unwrap()];
        for step in [
            "<g class=\"step changed\"><title>changed: Normalise order lines (script, step 5)</title>",
            "<g class=\"step removed\"><title>removed: Batch 50 (flow-control, step 4)</title>",
            "<g class=\"step added\"><title>added: &lt;b&gt;Notify &amp; \"log\"&lt;/b&gt; (map, step 7)</title>",
        ] {
            assert!(section.contains(step), "{flow}: {step}\n{section}");
        }
        // The masked secret in the change table.
        assert!(section.contains("\"token\":\"••••\""), "{section}");
    }
    // A screenshot that is not blank.
    let png = d.join("report.png");
    let o = chromium_on(&report, &format!("--screenshot={}", png.display()));
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    let (w, h, varied) = png_is_not_blank(&bytes);
    assert_eq!((w, h), (1400, 1000));
    assert!(varied, "the screenshot is one colour");
    // The check itself: an empty page is one colour.
    std::fs::write(
        d.join("blank.html"),
        "<!DOCTYPE html><html><body></body></html>",
    )
    .unwrap();
    let o = chromium_on(
        &d.join("blank.html"),
        &format!("--screenshot={}", png.display()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!png_is_not_blank(&std::fs::read(&png).unwrap()).2);
}

#[test]
fn inspect_draws_every_version_as_html_mermaid_and_dot() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut doc = reference();
    doc["flow"]["name"] = json!(HOSTILE);
    write_json(&d.join("doc.json"), &doc);
    let o = run(d, &["inspect", "doc.json", "--format", "mermaid"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = stdout(&o);
    assert!(m.starts_with("flowchart LR\n"), "{m}");
    assert!(m.contains("subgraph g0[\"#lt;script#gt;alert(1)#lt;/script#gt; #amp; #quot;Orders#quot; · iteration 7\"]"), "{m}");
    assert!(m.contains("subgraph g1["));
    assert!(m.contains("g0s1 -->|\"Try\"| g0s2"));
    assert!(!m.contains("<script"));
    let o = run(d, &["inspect", "doc.json", "--format", "dot"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let g = stdout(&o);
    assert!(g.starts_with("digraph"), "{g}");
    assert!(
        g.contains("g0s4 [label=\"Normalise order lines\\nscript\"];"),
        "{g}"
    );
    assert!(
        g.contains("label=\"<script>alert(1)</script> & \\\"Orders\\\" · iteration 7\";"),
        "{g}"
    );
    let o = run(d, &["inspect", "doc.json", "--format", "html"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let h = stdout(&o);
    assert!(h.contains("content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\""));
    assert!(!h.contains("<script"));
    assert_eq!(h.matches("<svg").count(), 2);
    assert!(h.contains("<g class=\"step same\"><title>Batch 50 (flow-control, step 4)</title>"));
    // A version-1 document is drawn as migrated; an archive draws each of its flows.
    let o = run(
        d,
        &[
            "inspect",
            s(&fixture("reference/export-v1-legacy.json")),
            "--format",
            "dot",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("->"), "{}", stdout(&o));
    let (_, right) = generated_archives(d);
    let o = run(d, &["inspect", s(&right), "--format", "mermaid"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("  subgraph ").count(),
        18,
        "{}",
        stdout(&o)
    );
}

#[test]
fn push_dry_run_plan_as_markdown() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let doc = reference();
    write_json(&d.join("a/order.json"), &doc);
    let o = run(
        d,
        &[
            "pack",
            "a",
            "-o",
            "a.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, &["push", "a.flowpack", "--env", "local", "--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut edited = doc.clone();
    edited["flow"]["versions"][0]["steps"][4]["config"]["script_version"] = json!(9);
    write_json(&d.join("a/order.json"), &edited);
    let mut other = doc;
    other["flow"]["name"] = json!("New | flow *bold*");
    write_json(&d.join("a/new.json"), &other);
    let o = run(
        d,
        &[
            "pack",
            "a",
            "-o",
            "b.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.1",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(
        d,
        &[
            "push",
            "b.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let md = stdout(&o);
    assert!(
        md.starts_with("### flowpack push <code>b.flowpack</code> → <code>local</code> (dry run)"),
        "{md}"
    );
    assert!(
        md.contains("| create | 1 |\n| replace | 0 |\n| conflict | 1 |"),
        "{md}"
    );
    assert!(md.contains("<details><summary>conflict <b>Shopify &#62; NetSuite Orders</b> (1 change shown)</summary>"), "{md}");
    assert!(
        md.contains("| <code>/flow/versions/0/steps/4/config/script&#95;version</code> | 3 | 9 |"),
        "{md}"
    );
    assert!(
        md.contains("- create: New &#124; flow &#42;bold&#42;\n"),
        "{md}"
    );
    // Markdown is a plan: without --dry-run it is refused before anything is read.
    let o = run(
        d,
        &[
            "push",
            "b.flowpack",
            "--env",
            "local",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("needs --dry-run"));
}

#[test]
fn a_report_of_1000_flows_with_10_changed_stays_under_5_mb() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = reference();
    for i in 0..1000 {
        let mut doc = base.clone();
        doc["flow"]["name"] = json!(format!("Flow {i:04} {}", "n".repeat(60)));
        write_json(&d.join(format!("l/{i}.json")), &doc);
        if i % 100 == 7 {
            doc = changed(doc);
        }
        write_json(&d.join(format!("r/{i}.json")), &doc);
    }
    let o = run(d, &["diff", "l", "r", "--format", "html", "-o", "r.html"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert_eq!(html.matches("<section id=\"flow-").count(), 10);
    assert_eq!(html.matches("<svg").count(), 10);
    assert!(html.contains("<td>different</td><td>10</td><td>0</td><td>0</td><td>990</td>"));
    assert!(html.len() < 5 * 1024 * 1024, "{} bytes", html.len());
}
