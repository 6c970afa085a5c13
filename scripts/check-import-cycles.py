#!/usr/bin/env python3
"""No import circles between the files of `src/`.

Reads every `.rs` file under `src/`, maps it to its module path (`src/lib.rs`
and `src/main.rs` are crate roots, `foo/mod.rs` and `foo.rs` are module
`foo`), and collects what each file refers to: the paths of its `use`
declarations (nested `{...}` groups, `pub use`, `as`, globs) and the paths in
its code (`crate::a::b`, `super::x`, `self::y`, and paths that start with a
name a `use` bound or with a child module). Each reference is resolved to the
deepest *file* module it names, which gives a file-level graph: an edge A -> B
when A refers to an item defined in B. A path that names a module itself
(`use super::status;`) is no edge on its own; the paths written through that
name are. A reference inside one file is no edge either, so `use super::*` in
a file's `mod tests` is none.

Decisions, so the graph is the one cargo compiles:
- Comments (doc comments included), string, byte-string, raw-string and char
  literals are blanked before parsing: `crate::` in a doc link is no import.
- `#[cfg(test)] mod tests` and other inline modules are part of their file:
  their imports are the file's imports (cargo compiles them with the file).
- `$crate::` in a macro body counts as `crate::`. Macros used by textual
  scope (no path) are invisible to this check.
- In `src/main.rs` (and `src/bin/`), paths starting with the library's name
  resolve into the library's tree.

Then Tarjan's algorithm finds the strongly connected components. Every
component of more than one file is a circle; each is printed with a set of
cycles `a.rs -> b.rs -> a.rs` that together use every edge inside it, and
with the line that makes each edge.

Exits 1 when a circle is not listed in `scripts/known-import-cycles.txt`
(one line per allowed circle: the sorted files of its component, space
separated; `#` starts a comment) or when a listed circle no longer exists,
so the list can only shrink on purpose.

One more rule on the same graph: no file under `src/server/handlers/`
imports another file there (`handlers/mod.rs`, which declares them and holds
their error helpers, excepted): handlers call down into `src/server/`, never
sideways. Exits 1 on such an edge unless `scripts/known-handler-imports.txt`
lists it (`SOURCE -> TARGET`, one a line), and on a listed edge that no
longer exists.

And the layering ARCHITECTURE.md states, on the same graph:
- the crate model (`src/server/model.rs`, the files under
  `src/server/model/`) and every file of `src/` it reaches name no LSP
  type (`tower_lsp`, `lsp_types`) in their code, so the model stays plain
  data testable without a client; nor does any file under `src/config/`;
- the edges in FORBIDDEN (for example `config` never imports `plan`, and
  the server's `event` and `state` never import a handler) do not exist.
Exits 1 on any of these. Exits 0 otherwise.

Usage: check-import-cycles.py [--root DIR] [--known FILE] [--edges]
"""

import argparse
import os
import re
import sys
from collections import deque

# --------------------------------------------------------------------------
# Blanking comments and literals


def blank_comments_and_literals(text):
    """The text with comments and literals replaced by spaces (newlines kept,
    so line numbers stay right)."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        end = None
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
        elif text.startswith("/*", i):
            end = _block_comment_end(text, i)
        elif c == '"':
            end = _quoted_end(text, i, '"')
        elif c == "'":
            end = _char_end(text, i)
            if end is None:
                # A lifetime or a label: no literal, keep it.
                out.append(c)
                i += 1
                continue
        elif c.isalnum() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            raw = RAW_STRING.match(text, i) if word in ("r", "br", "cr") else None
            if raw:
                close = '"' + raw.group(1)
                end = text.find(close, raw.end())
                end = n if end == -1 else end + len(close)
            elif word in ("b", "c") and j < n and text[j] == '"':
                end = _quoted_end(text, j, '"')
            elif word == "b" and j < n and text[j] == "'":
                end = _char_end(text, j)
            if end is None:
                out.append(word)
                i = j
                continue
        else:
            out.append(c)
            i += 1
            continue
        out.append("".join("\n" if ch == "\n" else " " for ch in text[i:end]))
        i = end
    return "".join(out)


RAW_STRING = re.compile(r'(?:br|cr|r)(#*)"')


def _block_comment_end(text, i):
    """Index after the (nested) block comment starting at i."""
    depth = 0
    j = i
    while j < len(text):
        if text.startswith("/*", j):
            depth += 1
            j += 2
        elif text.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return j


def _quoted_end(text, i, quote):
    """Index after the literal opened by the quote at i (escapes skipped)."""
    j = i + 1
    while j < len(text) and text[j] != quote:
        j += 2 if text[j] == "\\" else 1
    return min(j + 1, len(text))


def _char_end(text, i):
    """Index after the char literal at i, or None when the quote starts a
    lifetime or a label (`'a`, `'static`, `'outer:`)."""
    if text.startswith("\\", i + 1):
        return _quoted_end(text, i, "'")
    if i + 2 < len(text) and text[i + 2] == "'" and text[i + 1] != "\n":
        return i + 3
    return None


# --------------------------------------------------------------------------
# Tokens

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<ident>r\#[A-Za-z_]\w*|[A-Za-z_]\w*)
  | (?P<number>\d[\w.]*)
  | (?P<lifetime>'[A-Za-z_]\w*)
  | (?P<path>::)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(text):
    """[(kind, value, line)] of blanked source."""
    out = []
    line = 1
    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            line += value.count("\n")
            continue
        if kind == "ident" and value.startswith("r#"):
            value = value[2:]
        out.append((kind, value, line))
    return out


# --------------------------------------------------------------------------
# Files and modules


class Tree:
    """The files under src/ and the module path of each."""

    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.files = {}  # relative path -> (crate, module path)
        self.modules = {}  # (crate, module path) -> relative path
        self.lib_name = _lib_name(root)
        for directory, _, names in os.walk(self.src):
            for name in sorted(names):
                if not name.endswith(".rs"):
                    continue
                full = os.path.join(directory, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                crate, module = self._module_of(rel)
                self.files[rel] = (crate, module)
                self.modules.setdefault((crate, module), rel)

    def _module_of(self, rel):
        parts = rel.split("/")[1:]  # below src/
        if parts == ["lib.rs"]:
            return "lib", ()
        if parts == ["main.rs"]:
            return "bin:main", ()
        if parts[0] == "bin":
            # src/bin/x.rs and src/bin/x/main.rs are binaries of their own.
            if len(parts) == 2:
                return "bin:" + parts[1][:-3], ()
            if parts[2:] == ["main.rs"]:
                return "bin:" + parts[1], ()
            name = parts[1]
            module = _module_parts(parts[2:])
            return "bin:" + name, module
        return "lib", _module_parts(parts)

    def file_of(self, crate, module):
        """The file of a module of a crate; the library's files serve
        `src/main.rs` too, as they would if it declared them."""
        if (crate, module) in self.modules:
            return self.modules[(crate, module)]
        if module and crate == "bin:main":
            return self.modules.get(("lib", module))
        return None

    def children(self, crate, module):
        """Names of the file modules directly below a module."""
        names = set()
        for other_crate, other in self.modules:
            if len(other) == len(module) + 1 and other[: len(module)] == module:
                if other_crate == crate or (crate == "bin:main" and other_crate == "lib"):
                    names.add(other[-1])
        return names


def _module_parts(parts):
    *dirs, last = parts
    if last == "mod.rs":
        return tuple(dirs)
    return tuple(dirs) + (last[:-3],)


def _lib_name(root):
    """The library's name as paths spell it (`[lib] name`, else the
    package name with `-` as `_`)."""
    try:
        with open(os.path.join(root, "Cargo.toml"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    section = None
    package_name = lib_name = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        m = re.match(r'name\s*=\s*"([^"]+)"', line)
        if m and section == "[package]":
            package_name = m.group(1)
        if m and section == "[lib]":
            lib_name = m.group(1)
    name = lib_name or package_name
    return name.replace("-", "_") if name else None


# --------------------------------------------------------------------------
# References of one file


class Reference:
    def __init__(self, target, line, text):
        self.target = target  # relative path of the file referred to
        self.line = line
        self.text = text  # the path as written, for the report


class FileScan:
    """The references of one file, resolved to files."""

    def __init__(self, tree, rel):
        self.tree = tree
        self.rel = rel
        self.crate, self.module = tree.files[rel]
        with open(os.path.join(tree.root, rel), encoding="utf-8") as f:
            self.toks = tokens(blank_comments_and_literals(f.read()))
        # Per module scope (file module + inline modules): name -> absolute
        # path the `use` bound it to, and modules glob-imported there.
        self.aliases = {}
        self.globs = {}
        self.references = []
        self._scan()

    # -- scopes --------------------------------------------------------

    def _scopes_per_token(self):
        """The module (file module + inline modules) each token is in."""
        scopes = []
        stack = []  # (brace depth the inline module opened at, name)
        depth = 0
        toks = self.toks
        for i, (kind, value, _) in enumerate(toks):
            scopes.append(self.module + tuple(name for _, name in stack))
            if value == "{" and kind == "punct":
                if (
                    i >= 2
                    and toks[i - 2][1] == "mod"
                    and toks[i - 2][0] == "ident"
                    and toks[i - 1][0] == "ident"
                ):
                    stack.append((depth, toks[i - 1][1]))
                depth += 1
            elif value == "}" and kind == "punct":
                depth -= 1
                if stack and stack[-1][0] == depth:
                    stack.pop()
        return scopes

    # -- resolving -----------------------------------------------------

    def _lookup(self, scope, name):
        """What a leading name means in a scope: an absolute path, or None
        for something outside the crate (another crate, a local)."""
        s = scope
        while True:
            if name in self.aliases.get(s, {}):
                return self.aliases[s][name]
            if len(s) == len(self.module):
                break
            s = s[:-1]
        # Child modules of the enclosing modules in this file (the inline
        # tests module sees its file's children through `use super::*`).
        s = scope
        while True:
            if name in self.tree.children(self.crate, s):
                return s + (name,)
            for globbed in self.globs.get(s, ()):
                if name in self.tree.children(self.crate, globbed):
                    return globbed + (name,)
            if len(s) == len(self.module):
                break
            s = s[:-1]
        return None

    def _absolute(self, scope, segments):
        """The absolute module path a written path means, or None."""
        first = segments[0]
        rest = list(segments[1:])
        if first in ("crate", "$crate"):
            return tuple(rest)
        if first == "self":
            base = scope
        elif first == "super":
            base = scope[:-1]
            while rest and rest[0] == "super":
                base = base[:-1]
                rest.pop(0)
        elif first == self.tree.lib_name and self.crate.startswith("bin:"):
            return tuple(rest)
        else:
            found = self._lookup(scope, first)
            if found is None:
                return None
            return tuple(found) + tuple(rest)
        return tuple(base) + tuple(rest)

    def _deepest_file(self, path):
        """(file, names the module itself) for an absolute path."""
        crate = self.crate
        best = self.tree.file_of(crate, ())
        for k in range(1, len(path) + 1):
            found = self.tree.file_of(crate, tuple(path[:k]))
            if found is None:
                return best, False
            best = found
        return best, True

    def _refer(self, scope, segments, line, glob=False):
        path = self._absolute(scope, segments)
        if path is None:
            return
        target, whole_module = self._deepest_file(path)
        if target is None or (whole_module and not glob):
            return
        if target != self.rel:
            text = "::".join(segments) + ("::*" if glob else "")
            self.references.append(Reference(target, line, text))

    # -- parsing -------------------------------------------------------

    def _scan(self):
        toks = self.toks
        scopes = self._scopes_per_token()
        in_use = [False] * len(toks)
        uses = []  # (scope, [(segments, binding, glob, line)])
        i = 0
        while i < len(toks):
            kind, value, _ = toks[i]
            if kind == "ident" and value == "use" and not self._at(i + 1, "<"):
                start = i
                leaves = []
                i = self._use_tree(i + 1, [], leaves)
                while i < len(toks) and toks[i][1] != ";":
                    i += 1
                for k in range(start, min(i + 1, len(toks))):
                    in_use[k] = True
                uses.append((scopes[start], leaves))
            i += 1

        # First the names every `use` binds (order does not matter in Rust),
        # then the references.
        for _ in range(2):  # twice, so `use a; use a::b as c;` chains resolve
            for scope, leaves in uses:
                for segments, binding, glob, _ in leaves:
                    path = self._absolute(scope, segments) if segments else None
                    if path is None:
                        continue
                    if glob:
                        self.globs.setdefault(scope, set()).add(path)
                    elif binding and binding != "_":
                        self.aliases.setdefault(scope, {})[binding] = path
        for scope, leaves in uses:
            for segments, _, glob, line in leaves:
                if segments:
                    self._refer(scope, segments, line, glob)

        i = 0
        while i < len(toks):
            if in_use[i] or not self._path_start(i):
                i += 1
                continue
            segments = [self._segment(i)]
            line = toks[i][2]
            j = i + (2 if toks[i][1] == "$" else 1)
            while self._at(j, "::") and j + 1 < len(toks) and toks[j + 1][0] == "ident":
                segments.append(toks[j + 1][1])
                j += 2
            if len(segments) > 1:
                self._refer(scopes[i], segments, line)
            i = j

    def _at(self, i, value):
        return i < len(self.toks) and self.toks[i][1] == value and self.toks[i][0] != "ident"

    def _segment(self, i):
        return "$crate" if self.toks[i][1] == "$" else self.toks[i][1]

    def _path_start(self, i):
        toks = self.toks
        kind, value, _ = toks[i]
        if kind == "punct" and value == "$":
            if not (i + 1 < len(toks) and toks[i + 1][1] == "crate"):
                return False
            after = i + 2
        elif kind == "ident":
            after = i + 1
        else:
            return False
        if not self._at(after, "::"):
            return False
        if i > 0 and toks[i - 1][1] in ("::", ".") and toks[i - 1][0] != "ident":
            return False
        return True

    def _use_tree(self, i, prefix, leaves):
        """Parse one use tree at token i below `prefix`; append
        (segments, binding, glob, line) leaves; return the index after it."""
        toks = self.toks
        segments = list(prefix)
        if self._at(i, "::"):
            # `use ::other_crate::x`: outside this crate.
            segments = ["::"]
            i += 1
        while i < len(toks):
            kind, value, line = toks[i]
            if kind == "ident":
                segments.append(value)
                i += 1
                if self._at(i, "::"):
                    i += 1
                    continue
                binding = value
                if i < len(toks) and toks[i][1] == "as" and toks[i][0] == "ident":
                    binding = toks[i + 1][1] if i + 1 < len(toks) else None
                    i += 2
                if value == "self" and len(segments) > 1:
                    segments.pop()
                    if binding == "self":
                        binding = segments[-1]
                leaves.append((self._inside(segments), binding, False, line))
                return i
            if kind == "punct" and value == "$" and i + 1 < len(toks) and toks[i + 1][1] == "crate":
                segments.append("$crate")
                i += 2
                if self._at(i, "::"):
                    i += 1
                continue
            if kind == "punct" and value == "*":
                leaves.append((self._inside(segments), None, True, line))
                return i + 1
            if kind == "punct" and value == "{":
                i += 1
                while i < len(toks) and not self._at(i, "}"):
                    if self._at(i, ","):
                        i += 1
                        continue
                    before = i
                    i = self._use_tree(i, segments, leaves)
                    if i == before:
                        i += 1
                return i + 1
            return i
        return i

    @staticmethod
    def _inside(segments):
        """Segments of a path in this crate, or [] for another crate's."""
        if not segments or segments[0] == "::":
            return []
        return list(segments)


# --------------------------------------------------------------------------
# Graph, components, circles


def build_graph(tree):
    """{file: {target: first Reference}} over every file of the tree."""
    graph = {}
    for rel in sorted(tree.files):
        scan = FileScan(tree, rel)
        edges = {}
        for ref in scan.references:
            edges.setdefault(ref.target, ref)
        graph[rel] = edges
    return graph


def strongly_connected_components(graph):
    """Tarjan's algorithm, iterative; components as sorted lists."""
    index = {}
    low = {}
    on_stack = set()
    stack = []
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def covering_cycles(graph, component):
    """Cycles inside a component that together use each of its edges: for
    every edge u -> v, the shortest way back from v to u closes one."""
    members = set(component)
    cycles = []
    seen = set()
    for u in component:
        for v in sorted(graph[u]):
            if v not in members:
                continue
            back = _shortest_path(graph, v, u, members)
            cycle = [u] + back
            key = _rotation_key(cycle[:-1])
            if key in seen:
                continue
            seen.add(key)
            cycles.append(cycle)
    return cycles


def _shortest_path(graph, start, goal, members):
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for succ in sorted(graph[node]):
            if succ in members and succ not in previous:
                previous[succ] = node
                queue.append(succ)
    path = []
    node = goal
    while node is not None:
        path.append(node)
        node = previous[node]
    return list(reversed(path))


def _rotation_key(nodes):
    smallest = nodes.index(min(nodes))
    return tuple(nodes[smallest:] + nodes[:smallest])


def read_known(path):
    """The allowed circles: {line: line number}."""
    known = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    known[" ".join(sorted(line.split()))] = number
    except FileNotFoundError:
        pass
    return known


HANDLERS = "src/server/handlers/"


def handler_imports(graph):
    """{(source, target)}: edges from one handler file to another, the
    folder's mod.rs excepted on either side."""
    def handler(rel):
        return rel.startswith(HANDLERS) and rel != HANDLERS + "mod.rs"

    return {
        (source, target): ref
        for source, edges in graph.items()
        if handler(source)
        for target, ref in edges.items()
        if handler(target)
    }


MODEL = ("src/server/model.rs", "src/server/model/")
# Files (or folders, ending in /) that must name no LSP type themselves.
LSP_FREE = ("src/config/",)
# (source prefix, target prefix, why): edges that must not exist.
FORBIDDEN = (
    ("src/config/", "src/plan.rs", "config is below plan (plan resolves what config reads)"),
    ("src/server/event.rs", "src/server/handlers/", "the loop's events are plain data below the handlers"),
    ("src/server/state.rs", "src/server/handlers/", "the loop's state is below the handlers"),
    ("src/server/model", "src/server/handlers/", "the crate model is below the handlers"),
)


def forbidden_edges(graph):
    """[(source, target, ref, why)] for every edge FORBIDDEN names."""
    found = []
    for source, edges in sorted(graph.items()):
        for target, ref in sorted(edges.items()):
            for from_prefix, to_prefix, why in FORBIDDEN:
                if source.startswith(from_prefix) and target.startswith(to_prefix):
                    found.append((source, target, ref, why))
    return found
LSP_NAMES = re.compile(r"\b(tower_lsp|lsp_types)\b")


def lsp_in_model(tree, graph):
    """[(file, line number, line)]: where the crate model, or a file it
    reaches, names an LSP crate in its code."""
    start = [rel for rel in tree.files if rel == MODEL[0] or rel.startswith(MODEL[1])]
    reached, queue = set(start), deque(start)
    while queue:
        for target in graph.get(queue.popleft(), {}):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    reached |= {rel for rel in tree.files if rel.startswith(LSP_FREE)}
    found = []
    for rel in sorted(reached):
        with open(os.path.join(tree.root, rel), encoding="utf-8") as f:
            code = blank_comments_and_literals(f.read())
        for number, line in enumerate(code.splitlines(), 1):
            if LSP_NAMES.search(line):
                found.append((rel, number, line.strip()))
    return found, len(start)


def read_known_edges(path):
    """The allowed handler imports: {(source, target): line number}."""
    known = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    source, _, target = line.partition("->")
                    known[(source.strip(), target.strip())] = number
    except FileNotFoundError:
        pass
    return known


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.dirname(here), help="the crate's directory")
    parser.add_argument("--known", help="allowed circles (default: ROOT/scripts/known-import-cycles.txt)")
    parser.add_argument("--edges", action="store_true", help="print every edge of the graph too")
    args = parser.parse_args(argv)
    known_path = args.known or os.path.join(args.root, "scripts", "known-import-cycles.txt")
    known_handlers_path = os.path.join(args.root, "scripts", "known-handler-imports.txt")

    tree = Tree(args.root)
    graph = build_graph(tree)
    if args.edges:
        for source in sorted(graph):
            for target, ref in sorted(graph[source].items()):
                print(f"edge {source}:{ref.line} -> {target} ({ref.text})")

    circles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    known = read_known(known_path)
    failed = False
    found = set()
    for component in sorted(circles):
        key = " ".join(component)
        found.add(key)
        allowed = key in known
        failed |= not allowed
        label = "known circle" if allowed else "NEW import circle"
        print(f"{label} ({len(component)} files): {key}")
        for cycle in covering_cycles(graph, component):
            print("  " + " -> ".join(cycle))
        for source in component:
            for target, ref in sorted(graph[source].items()):
                if target in component:
                    print(f"    {source}:{ref.line} -> {target} ({ref.text})")
    for key, number in sorted(known.items(), key=lambda item: item[1]):
        if key not in found:
            failed = True
            print(f"STALE entry {os.path.relpath(known_path, args.root)}:{number}: no longer a circle: {key}")
            print("  remove it (the list only shrinks)")
    known_handlers = read_known_edges(known_handlers_path)
    handler_edges = handler_imports(graph)
    for (source, target), ref in sorted(handler_edges.items()):
        if (source, target) not in known_handlers:
            failed = True
            print(f"HANDLER imports a handler: {source}:{ref.line} -> {target} ({ref.text})")
            print("  move what both need below src/server/handlers/ (or list the edge with a reason)")
    for (source, target), number in sorted(known_handlers.items(), key=lambda item: item[1]):
        if (source, target) not in handler_edges:
            failed = True
            print(
                f"STALE entry {os.path.relpath(known_handlers_path, args.root)}:{number}: "
                f"no longer an import: {source} -> {target}"
            )
            print("  remove it (the list only shrinks)")
    for source, target, ref, why in forbidden_edges(graph):
        failed = True
        print(f"FORBIDDEN import: {source}:{ref.line} -> {target} ({ref.text}): {why}")
    model_lsp, model_files = lsp_in_model(tree, graph)
    for rel, number, line in model_lsp:
        failed = True
        print(f"LSP TYPE in the crate model, config, or what the model imports: {rel}:{number}: {line}")
        print("  keep protocol types in the server's adapters (convert at the handler)")
    if failed:
        print(
            "import circles: FAILED (cut the new circle or handler import, or list it in "
            f"{os.path.relpath(known_path, args.root)} or scripts/known-handler-imports.txt with a reason)"
        )
        return 1
    print(
        f"import circles: ok ({len(tree.files)} files, {len(circles)} known circle(s), "
        f"{len(handler_edges)} known handler import(s), crate model of {model_files} file(s) free of LSP types, {len(FORBIDDEN)} layering rule(s) kept)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
