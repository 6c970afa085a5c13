#!/usr/bin/env python3
"""Tests of check-import-cycles.py: small `src/` trees written to a
temporary directory, the script run on them as CI runs it, its exit code and
report checked."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-import-cycles.py")


class CheckImportCycles(unittest.TestCase):
    def tree(self, files, known=None):
        """A crate directory with these files (path -> text) and, when given,
        a known-cycles list; returns its path."""
        root = tempfile.mkdtemp(prefix="import-cycles-")
        self.addCleanup(shutil.rmtree, root)
        with open(os.path.join(root, "Cargo.toml"), "w", encoding="utf-8") as f:
            f.write('[package]\nname = "demo-crate"\nversion = "0.1.0"\n')
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        os.makedirs(os.path.join(root, "scripts"), exist_ok=True)
        if known is not None:
            with open(os.path.join(root, "scripts", "known-import-cycles.txt"), "w", encoding="utf-8") as f:
                f.write(known)
        return root

    def check(self, root):
        """(exit code, output) of the script on a tree, with its edges."""
        run = subprocess.run(
            [sys.executable, SCRIPT, "--root", root, "--edges"],
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(run.stderr, "")
        return run.returncode, run.stdout

    def edges(self, output):
        """{(source, target)} from the report's edge lines."""
        found = set()
        for line in output.splitlines():
            if line.startswith("edge "):
                source, _, target = line[len("edge ") :].split(" ")[:3]
                found.add((source.rsplit(":", 1)[0], target))
        return found

    def test_a_circle_through_nested_use_groups_over_several_lines_fails(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": """\
                    use crate::{
                        b::{
                            Thing,
                        },
                    };
                    pub struct Other(Thing);
                """,
                "src/b.rs": """\
                    pub use crate::a::Other;
                    pub struct Thing;
                """,
            }
        )
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("NEW import circle (2 files): src/a.rs src/b.rs", output)
        self.assertIn("src/a.rs -> src/b.rs -> src/a.rs", output)

    def test_a_listed_circle_passes(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": "use crate::b::{Thing};\npub struct Other(Thing);\n",
                "src/b.rs": "use crate::a::Other;\npub struct Thing;\n",
            },
            known="# debt, see issue 1\nsrc/b.rs src/a.rs\n",
        )
        code, output = self.check(root)
        self.assertEqual(code, 0, output)
        self.assertIn("known circle (2 files): src/a.rs src/b.rs", output)

    def test_a_circle_through_inline_paths_and_a_bound_module_name_fails(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod net;\n",
                "src/net/mod.rs": "pub mod dial;\npub mod wire;\n",
                "src/net/dial.rs": """\
                    pub fn dial() -> usize {
                        crate::net::wire::frame_len()
                    }
                """,
                "src/net/wire.rs": """\
                    use super::dial;
                    pub fn frame_len() -> usize { 4 }
                    pub fn redial() -> usize { dial::dial() }
                """,
            }
        )
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("NEW import circle (2 files): src/net/dial.rs src/net/wire.rs", output)
        self.assertEqual(
            self.edges(output),
            {("src/net/dial.rs", "src/net/wire.rs"), ("src/net/wire.rs", "src/net/dial.rs")},
        )

    def test_super_and_mod_rs_without_a_circle_pass(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod net;\n",
                "src/main.rs": "fn main() { demo_crate::net::codec::encode(); }\n",
                "src/net/mod.rs": """\
                    //! Doc links are no imports: [`crate::net::codec`].
                    pub mod codec;
                    pub mod wire;
                    pub struct Config;
                """,
                "src/net/codec.rs": """\
                    use super::wire::{self, Frame};
                    use super::Config;
                    pub fn encode() -> Frame { wire::frame(Config) }
                    #[cfg(test)]
                    mod tests {
                        use super::*;
                        #[test]
                        fn encodes() { let _ = self::super::encode(); }
                    }
                """,
                "src/net/wire.rs": """\
                    // Comments and literals are blanked: crate::net::codec::encode
                    /* nested /* super::codec::encode */ still a comment */
                    pub struct Frame;
                    pub fn frame(_: super::Config) -> Frame {
                        let _ = "crate::net::codec::encode";
                        let _ = r#"super::codec::encode "quoted" "#;
                        let _ = b"self::super::codec";
                        let _ = ('{', '"', b'}', '\\'');
                        let _: &'static str = "";
                        Frame
                    }
                    #[cfg(test)]
                    mod tests {
                        use super::*;
                        #[test]
                        fn frames() { let _ = frame(super::super::Config); }
                    }
                """,
            }
        )
        code, output = self.check(root)
        self.assertEqual(code, 0, output)
        self.assertEqual(
            self.edges(output),
            {
                ("src/main.rs", "src/net/codec.rs"),
                ("src/net/codec.rs", "src/net/wire.rs"),
                ("src/net/codec.rs", "src/net/mod.rs"),
                ("src/net/wire.rs", "src/net/mod.rs"),
            },
        )
        self.assertIn("import circles: ok", output)

    def test_imports_of_a_tests_module_count(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": "pub fn f() { crate::b::g() }\n",
                "src/b.rs": """\
                    pub fn g() {}
                    #[cfg(test)]
                    mod tests {
                        use crate::a::f;
                        #[test]
                        fn calls() { f() }
                    }
                """,
            }
        )
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("src/b.rs:4 -> src/a.rs (crate::a::f)", output)

    def test_a_child_using_its_parents_item_is_an_edge(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod engine;\n",
                "src/engine/mod.rs": """\
                    mod docker;
                    pub use docker::Docker;
                    pub struct Sink;
                """,
                "src/engine/docker.rs": "use super::Sink;\npub struct Docker(Sink);\n",
            }
        )
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("src/engine/docker.rs -> src/engine/mod.rs -> src/engine/docker.rs", output)

    def test_a_listed_circle_that_is_gone_fails_as_stale(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod a;\npub mod b;\n",
                "src/a.rs": "use crate::b::Thing;\npub struct Other(Thing);\n",
                "src/b.rs": "pub struct Thing;\n",
            },
            known="# cut since\nsrc/a.rs src/b.rs\n",
        )
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("STALE entry scripts/known-import-cycles.txt:2: no longer a circle: src/a.rs src/b.rs", output)
        self.assertNotIn("circle (", output)

    def test_a_handler_importing_another_handler_fails_unless_listed(self):
        files = {
            "src/lib.rs": "pub mod server;\n",
            "src/server/mod.rs": "pub mod handlers;\npub mod state;\n",
            "src/server/state.rs": "pub struct State;\n",
            "src/server/handlers/mod.rs": "pub mod build;\npub mod run;\npub fn failed() {}\n",
            "src/server/handlers/build.rs": "use crate::server::state::State;\npub fn start(_: &State) { super::failed() }\n",
            "src/server/handlers/run.rs": "pub fn run(state: &crate::server::state::State) { super::build::start(state) }\n",
        }
        root = self.tree(files)
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn(
            "HANDLER imports a handler: src/server/handlers/run.rs:1 -> src/server/handlers/build.rs", output
        )
        self.assertNotIn("-> src/server/handlers/mod.rs (", output.split("HANDLER", 1)[1])
        self.assertNotIn("circle (", output)

        with open(os.path.join(root, "scripts", "known-handler-imports.txt"), "w", encoding="utf-8") as f:
            f.write("# still to cut\nsrc/server/handlers/run.rs -> src/server/handlers/build.rs\n")
        code, output = self.check(root)
        self.assertEqual(code, 0, output)
        self.assertIn("1 known handler import(s)", output)

    def test_an_lsp_type_in_the_crate_model_or_what_it_imports_fails(self):
        files = {
            "src/lib.rs": "pub mod server;\npub mod status;\n",
            "src/status.rs": "pub struct Status;\n",
            "src/server/mod.rs": "pub mod model;\npub mod adapter;\n",
            "src/server/adapter.rs": "use tower_lsp::lsp_types::Url;\npub fn f(_: Url) {}\n",
            "src/server/model.rs": "pub mod activity;\nuse crate::status::Status;\n// tower_lsp in a comment is fine\npub fn s(_: Status) {}\n",
            "src/server/model/activity.rs": "pub struct Activity;\n",
        }
        root = self.tree(files)
        code, output = self.check(root)
        self.assertEqual(code, 0, output)
        self.assertIn("crate model of 2 file(s) free of LSP types", output)
        # The model reaching a file that names an LSP type fails, naming it.
        with open(os.path.join(root, "src/status.rs"), "w", encoding="utf-8") as f:
            f.write("pub struct Status(pub tower_lsp::lsp_types::Url);\n")
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("LSP TYPE in the crate model, config, or what the model imports: src/status.rs:1", output)
        self.assertNotIn("src/server/adapter.rs:", output.split("LSP TYPE", 1)[1])

    def test_config_importing_plan_is_forbidden(self):
        files = {
            "src/lib.rs": "pub mod config;\npub mod plan;\n",
            "src/plan.rs": "pub struct Settings;\n",
            "src/config/mod.rs": "pub mod checker;\n",
            "src/config/checker.rs": "pub fn check() {}\n",
        }
        root = self.tree(files)
        code, output = self.check(root)
        self.assertEqual(code, 0, output)
        with open(os.path.join(root, "src/config/checker.rs"), "w", encoding="utf-8") as f:
            f.write("pub fn check(_: crate::plan::Settings) {}\n")
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("FORBIDDEN import: src/config/checker.rs:1 -> src/plan.rs", output)
        # An LSP type in config is refused too.
        with open(os.path.join(root, "src/config/checker.rs"), "w", encoding="utf-8") as f:
            f.write("pub fn check(_: tower_lsp::lsp_types::Url) {}\n")
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn("src/config/checker.rs:1", output.split("LSP TYPE", 1)[1])

    def test_a_listed_handler_import_that_is_gone_fails_as_stale(self):
        root = self.tree(
            {
                "src/lib.rs": "pub mod server;\n",
                "src/server/mod.rs": "pub mod handlers;\n",
                "src/server/handlers/mod.rs": "pub mod build;\npub mod run;\n",
                "src/server/handlers/build.rs": "pub fn start() {}\n",
                "src/server/handlers/run.rs": "pub fn run() {}\n",
            },
        )
        with open(os.path.join(root, "scripts", "known-handler-imports.txt"), "w", encoding="utf-8") as f:
            f.write("src/server/handlers/run.rs -> src/server/handlers/build.rs\n")
        code, output = self.check(root)
        self.assertEqual(code, 1, output)
        self.assertIn(
            "STALE entry scripts/known-handler-imports.txt:1: no longer an import: "
            "src/server/handlers/run.rs -> src/server/handlers/build.rs",
            output,
        )


if __name__ == "__main__":
    unittest.main()
