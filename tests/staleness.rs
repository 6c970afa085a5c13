//! Precise staleness, end to end: a fixture crate is built for real (host
//! build, packaged into an image by the real engine), then each change of
//! the matrix is made on disk, judged by `arca status --json`, and reverted.
//! An image must stay fresh after changes to things that did not go into it
//! and turn stale after every real input change; reverting returns to fresh.
//!
//! Prints `staleness: false-stale F of N, missed-stale M of N` (the
//! benchmark figure of BENCHMARKS.md; `scripts/bench-staleness.sh`).

#[path = "common/docker.rs"]
mod docker;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ENV_VAR: &str = "ARCA_STALENESS_VAR";

struct Crate {
    root: PathBuf,
    home: PathBuf,
}

impl Crate {
    fn app(&self) -> PathBuf {
        self.root.join("app")
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn arca(&self, args: &[&str], env_value: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arca"));
        command.args(args).env("ARCA_HOME", &self.home);
        match env_value {
            Some(value) => command.env(ENV_VAR, value),
            None => command.env_remove(ENV_VAR),
        };
        command.output().expect("run arca")
    }

    fn state(&self, env_value: Option<&str>) -> (String, Vec<String>) {
        let app = self.app();
        let output = self.arca(
            &["status", "--json", app.to_str().expect("path")],
            env_value,
        );
        assert!(output.status.success(), "{}", describe(&output));
        let status: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        let reasons = status["reasons"]
            .as_array()
            .map(|reasons| {
                reasons
                    .iter()
                    .filter_map(|reason| reason.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (status["state"].as_str().unwrap_or("?").to_owned(), reasons)
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A crate with a path dependency, a module, an `include_str!` file, a build
/// script with `rerun-if-changed`, an `option_env!` variable, tests,
/// benches, examples and a README.
fn fixture(test: &docker::DockerTest) -> Crate {
    let fixture = Crate {
        root: test.work.path().canonicalize().expect("canonical"),
        home: test.home.path().to_path_buf(),
    };
    fixture.write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[features]\nloud = []\n\n[dependencies]\ndep = { path = \"../dep\" }\n\n[workspace]\n",
    );
    fixture.write(
        "app/build.rs",
        "fn main() {\n    println!(\"cargo:rerun-if-changed=data/schema.txt\");\n    println!(\"cargo:rerun-if-changed=build.rs\");\n}\n",
    );
    fixture.write("app/data/schema.txt", "schema v1\n");
    fixture.write("app/src/greeting.txt", "hello\n");
    fixture.write("app/src/util.rs", "pub fn answer() -> i32 { 40 }\n");
    fixture.write(
        "app/src/main.rs",
        &format!(
            "mod util;\n\nfn main() {{\n    let greeting = include_str!(\"greeting.txt\").trim();\n    println!(\"{{greeting}} {{}} {{:?}}\", util::answer() + dep::two(), option_env!(\"{ENV_VAR}\"));\n}}\n"
        ),
    );
    fixture.write("app/README.md", "# app\n");
    fixture.write("app/tests/smoke.rs", "#[test]\nfn smoke() {}\n");
    fixture.write("app/benches/speed.rs", "fn main() {}\n");
    fixture.write("app/examples/demo.rs", "fn main() {}\n");
    fixture.write(
        "app/.arca/config.toml",
        "[rust]\nprofile = \"dev\"\nfeatures = []\nbase_image = \"arca-test/busybox:latest\"\n",
    );
    fixture.write(
        "dep/Cargo.toml",
        "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    fixture.write("dep/src/lib.rs", "pub fn two() -> i32 { 2 }\n");
    let status = Command::new("cargo")
        .args(["generate-lockfile", "--offline", "--manifest-path"])
        .arg(fixture.app().join("Cargo.toml"))
        .status()
        .expect("cargo generate-lockfile");
    assert!(status.success());
    fixture
}

/// One change of the matrix: applied, judged, reverted.
struct Case {
    name: &'static str,
    /// Whether the change went into the binary (so must make it stale).
    real_input: bool,
    /// Relative path and new contents; `None` contents deletes a created file.
    edit: Edit,
}

enum Edit {
    /// Replace a file's contents (created if missing; removed again or
    /// restored on revert).
    Write(&'static str, &'static str),
    /// Append to a file.
    Append(&'static str, &'static str),
    /// Set the file's modification time without changing its contents.
    Touch(&'static str),
    /// Judge with another value of the `option_env!` variable.
    Env(Option<&'static str>),
}

fn matrix() -> Vec<Case> {
    use Edit::*;
    vec![
        Case {
            name: "README.md edited",
            real_input: false,
            edit: Append("app/README.md", "more\n"),
        },
        Case {
            name: "tests/ file edited",
            real_input: false,
            edit: Append("app/tests/smoke.rs", "// x\n"),
        },
        Case {
            name: "benches/ file edited",
            real_input: false,
            edit: Append("app/benches/speed.rs", "// x\n"),
        },
        Case {
            name: "examples/ file edited",
            real_input: false,
            edit: Append("app/examples/demo.rs", "// x\n"),
        },
        Case {
            name: "vim swap file created",
            real_input: false,
            edit: Write("app/src/.main.rs.swp", "swap"),
        },
        Case {
            name: "emacs autosave created",
            real_input: false,
            edit: Write("app/src/#main.rs#", "autosave"),
        },
        Case {
            name: "source touched, same content",
            real_input: false,
            edit: Touch("app/src/main.rs"),
        },
        Case {
            name: "src/main.rs edited",
            real_input: true,
            edit: Append("app/src/main.rs", "// changed\n"),
        },
        Case {
            name: "module src/util.rs edited",
            real_input: true,
            edit: Append("app/src/util.rs", "// changed\n"),
        },
        Case {
            name: "path dependency source edited",
            real_input: true,
            edit: Append("dep/src/lib.rs", "// changed\n"),
        },
        Case {
            name: "include_str! file edited",
            real_input: true,
            edit: Append("app/src/greeting.txt", "!\n"),
        },
        Case {
            // Cargo reads the resolve, not the bytes: a blank line changes
            // no rustc input and cargo rebuilds nothing (issue 10).
            name: "blank line appended to Cargo.lock",
            real_input: false,
            edit: Append("app/Cargo.lock", "\n"),
        },
        Case {
            name: "Cargo.toml features edited",
            real_input: true,
            edit: Append("app/Cargo.toml", ""),
        },
        Case {
            name: "build.rs edited",
            real_input: true,
            edit: Append("app/build.rs", "// changed\n"),
        },
        Case {
            // Cargo compiles and runs a new build script, then rebuilds
            // the package and the binary.
            name: "build.rs added to a path dependency",
            real_input: true,
            edit: Write("dep/build.rs", "fn main() {}\n"),
        },
        Case {
            name: "rerun-if-changed file edited",
            real_input: true,
            edit: Append("app/data/schema.txt", "v2\n"),
        },
        Case {
            name: ".arca/config.toml features changed",
            real_input: true,
            edit: Write(
                "app/.arca/config.toml",
                "[rust]\nprofile = \"dev\"\nfeatures = [\"loud\"]\nbase_image = \"arca-test/busybox:latest\"\n",
            ),
        },
        Case {
            name: "option_env! variable changed",
            real_input: true,
            edit: Env(Some("two")),
        },
        Case {
            name: "option_env! variable unset",
            real_input: true,
            edit: Env(None),
        },
    ]
}

#[test]
fn an_image_is_stale_exactly_when_an_input_changed() {
    // Its Drop removes the images of every artifact under its ARCA_HOME.
    let Some(test) = docker::DockerTest::new() else {
        return;
    };
    let fixture = fixture(&test);
    let app = fixture.app();
    let build = fixture.arca(
        &["build", "rust", app.to_str().expect("path"), "--host-build"],
        Some("one"),
    );
    assert!(build.status.success(), "{}", describe(&build));
    assert_eq!(fixture.state(Some("one")).0, "fresh");

    let mut failures = Vec::new();
    let (mut false_stale, mut missed_stale, mut real, mut unreal) = (0, 0, 0, 0);
    for case in matrix() {
        let (env_override, revert) = apply(&fixture, &case.edit);
        let (state, reasons) = fixture.state(env_override.unwrap_or(Some("one")));
        let expected = if case.real_input { "stale" } else { "fresh" };
        if case.real_input {
            real += 1;
            if state != "stale" {
                missed_stale += 1;
            }
        } else {
            unreal += 1;
            if state != "fresh" {
                false_stale += 1;
            }
        }
        if state != expected {
            failures.push(format!(
                "{}: {state} (expected {expected}), reasons {reasons:?}",
                case.name
            ));
        } else if case.real_input && reasons.is_empty() {
            failures.push(format!("{}: stale without a reason", case.name));
        }
        revert(&fixture);
        let (after, reasons) = fixture.state(Some("one"));
        if after != "fresh" {
            failures.push(format!(
                "{}: {after} after revert, reasons {reasons:?}",
                case.name
            ));
        }
    }
    println!(
        "staleness: false-stale {false_stale} of {unreal}, missed-stale {missed_stale} of {real}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type Revert = Box<dyn Fn(&Crate)>;

/// Applies an edit; returns the variable's value to judge with when the edit
/// is about the environment, and how to revert the edit.
fn apply(fixture: &Crate, edit: &Edit) -> (Option<Option<&'static str>>, Revert) {
    match edit {
        Edit::Env(value) => (Some(*value), Box::new(|_| {})),
        Edit::Touch(relative) => {
            let path = fixture.root.join(relative);
            let file = fs::File::options().append(true).open(&path).expect("open");
            file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
                .expect("touch");
            (None, Box::new(|_| {}))
        }
        Edit::Write(relative, text) | Edit::Append(relative, text) => {
            let path = fixture.root.join(relative);
            let before = fs::read(&path).ok();
            let new = match (edit, &before) {
                (Edit::Append(_, _), Some(before)) if relative.ends_with("Cargo.toml") => {
                    let mut text = String::from_utf8_lossy(before).into_owned();
                    text = text.replace("loud = []", "loud = []\nquiet = []");
                    text.into_bytes()
                }
                (Edit::Append(_, _), Some(before)) => [before.as_slice(), text.as_bytes()].concat(),
                _ => text.as_bytes().to_vec(),
            };
            fs::write(&path, new).expect("write");
            let path: PathBuf = path.clone();
            (None, Box::new(move |_| restore(&path, before.as_deref())))
        }
    }
}

fn restore(path: &Path, before: Option<&[u8]>) {
    match before {
        Some(bytes) => fs::write(path, bytes).expect("restore"),
        None => fs::remove_file(path).expect("remove"),
    }
}
