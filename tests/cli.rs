//! The command line itself: shell completions, manual pages, the top-level help, and a closed
//! stdout.

use std::process::{Command, Stdio};

use crate::util::{code, fixture, flowpack, flowpack_in, stderr, stdout};

/// Every command of `flowpack --help`, as listed there.
fn subcommands() -> Vec<String> {
    let o = flowpack(&["--help"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let help = stdout(&o);
    let listed: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues further indented; a command starts at column 2.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(listed.len() >= 12, "{help}");
    listed
}

#[test]
fn top_level_help_has_examples_and_exit_codes() {
    let o = flowpack(&["--help"]);
    let help = stdout(&o);
    assert!(help.contains("Examples:\n  flowpack validate"), "{help}");
    assert!(help.contains("flowpack push app.flowpack --env"), "{help}");
    assert!(help.contains("Exit codes: 0 success"), "{help}");
}

#[test]
fn bash_completion_mentions_every_subcommand() {
    let o = flowpack(&["completions", "bash"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let script = stdout(&o);
    assert!(script.contains("complete -F _flowpack"), "{script}");
    for cmd in subcommands() {
        assert!(
            script.contains(&format!("flowpack,{cmd})")),
            "bash completion lacks {cmd}"
        );
    }
    // A flag of one command is completed too.
    assert!(script.contains("--on-conflict"));
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_shell_is_usage() {
    for (shell, marker) in [
        ("zsh", "#compdef flowpack"),
        ("fish", "complete -c flowpack"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[flowpack]"),
    ] {
        let o = flowpack(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        assert!(stdout(&o).contains(marker), "{shell}: {}", stdout(&o));
    }
    let o = flowpack(&["completions", "tcsh"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn man_writes_one_page_per_command_and_never_clobbers_silently() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man1");
    let o = flowpack_in(t.path(), &["man", "man1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut expected = vec!["flowpack.1".to_string()];
    expected.extend(subcommands().iter().map(|c| format!("flowpack-{c}.1")));
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    for name in &written {
        let page = std::fs::read_to_string(dir.join(name)).unwrap();
        // After clap_mangen's quote-character preamble (`.ie`/`.el`), the page starts with its
        // title line naming itself, then the NAME section.
        let mut requests = page
            .lines()
            .filter(|l| !l.starts_with(".ie ") && !l.starts_with(".el "));
        let stem = name.trim_end_matches(".1");
        assert_eq!(
            requests
                .next()
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>()),
            Some(vec![".TH", stem, "1"]),
            "{name}"
        );
        assert_eq!(requests.next(), Some(".SH NAME"), "{name}");
        let source = format!("\"flowpack {}\"", env!("CARGO_PKG_VERSION"));
        assert!(page.contains(&source), "{name}: the source names flowpack");
    }
    let push = std::fs::read_to_string(dir.join("flowpack-push.1")).unwrap();
    assert!(push.contains("on\\-conflict"), "{push}");

    // A second run refuses, names the page, and changes nothing.
    std::fs::write(dir.join("flowpack-push.1"), "mine\n").unwrap();
    std::fs::remove_file(dir.join("flowpack.1")).unwrap();
    let o = flowpack_in(t.path(), &["man", "man1"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("flowpack-push.1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("flowpack-push.1")).unwrap(),
        "mine\n"
    );
    assert!(!dir.join("flowpack.1").exists(), "nothing is written");

    // --force replaces, a symlinked page too: the link is replaced, its target never written.
    std::fs::write(t.path().join("elsewhere.txt"), "keep\n").unwrap();
    std::fs::remove_file(dir.join("flowpack-pack.1")).unwrap();
    std::os::unix::fs::symlink(t.path().join("elsewhere.txt"), dir.join("flowpack-pack.1"))
        .unwrap();
    let o = flowpack_in(t.path(), &["man", "man1", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(dir.join("flowpack.1").exists());
    assert_eq!(
        std::fs::read_to_string(t.path().join("elsewhere.txt")).unwrap(),
        "keep\n"
    );
    let pack_page = dir.join("flowpack-pack.1");
    assert!(
        std::fs::symlink_metadata(&pack_page)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert!(
        std::fs::read_to_string(&pack_page)
            .unwrap()
            .contains(".SH NAME")
    );
    assert!(
        std::fs::read_to_string(dir.join("flowpack-push.1"))
            .unwrap()
            .contains(".SH NAME")
    );
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_process_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // The read end is closed before the process starts, so its first write hits a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["inspect"])
        .arg(fixture("reference/export-v2-order-sync.json"))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(stderr(&o), "", "no 'Broken pipe' error");
    assert_eq!(
        o.status.signal(),
        Some(13),
        "ended by SIGPIPE: {:?}",
        o.status
    );
}

/// The manual pages' synopses name every option's value (`[--filter <name=TEXT>]`), and the
/// text after the options is under EXAMPLES, NOTES and EXIT STATUS, never a heading "EXTRA".
#[test]
fn man_pages_have_value_names_and_proper_sections() {
    let t = tempfile::tempdir().unwrap();
    let o = flowpack_in(t.path(), &["man", "man1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dir = t.path().join("man1");
    let export = std::fs::read_to_string(dir.join("flowpack-export.1")).unwrap();
    let synopsis = export
        .lines()
        .skip_while(|l| *l != ".SH SYNOPSIS")
        .nth(1)
        .unwrap();
    for part in [
        "[\\-\\-filter <name=TEXT>]",
        "[\\-\\-env <NAME>]",
        "[\\-\\-sign <KEY>...]",
        "\\-o|\\-\\-output <OUT>",
        "<\\-\\-flow <ID>...|\\-\\-all>",
    ] {
        assert!(synopsis.contains(part), "{part} in {synopsis}");
    }
    assert!(export.contains(".SH EXAMPLES\n"), "{export}");
    assert!(export.contains(".SH \"EXIT STATUS\"\n"), "{export}");
    for e in std::fs::read_dir(&dir).unwrap() {
        let page = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!page.contains(".SH EXTRA"), "{page}");
        assert_eq!(page.matches(".el .ds Aq").count(), 1, "{page}");
    }
}
