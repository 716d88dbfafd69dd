"""Read a Dockerfile and its build context the way the builder does, without building: pure functions.

    dockerfile = Dockerfile.parse(text)
    dockerfile.arg_defaults            # {"BASE_IMAGE": "python:3.11.11-slim-bookworm"} (ARGs before the first FROM)
    dockerfile.copies                  # the COPY/ADD instructions that read the build context
    files = context_files(context, dockerfile, ignore)   # the context files those instructions read

`context_files` is what a build depends on besides the base image and the build arguments: the files the
COPY/ADD sources name, minus what `.dockerignore` excludes (Docker's rules: `*` and `?` stay inside one path
element, `**` spans any number, a pattern that matches a folder excludes everything below it, `!` re-includes,
the last matching line wins). Hashing those files (not the whole context folder) keeps the smoke image, whose
context is the repository root, from rebuilding on every unrelated edit.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from devstack.runtime.errors import DevstackError


@dataclass(frozen=True)
class Copy:
    """One COPY or ADD that reads the build context (a `--from=<stage>` copy reads another image instead)."""

    sources: tuple[str, ...]  # relative to the build context, as written
    destination: str  # in the image; a relative one is under the WORKDIR in force (`workdir`)
    workdir: str
    chown: str = ""


@dataclass(frozen=True)
class Dockerfile:
    """The instructions our checks and the image builder need, continuation lines joined, comments dropped."""

    arg_defaults: dict[str, str]  # ARGs declared before the first FROM: what `--build-arg` may override in FROM
    stages: tuple[str, ...]  # each FROM's image reference as written (`${BASE_IMAGE}`, `python:3.11...`)
    copies: tuple[Copy, ...]
    user: str = ""  # the last USER of the final stage
    workdir: str = "/"  # the last WORKDIR of the final stage
    env: dict[str, str] = field(default_factory=dict)  # ENV of the final stage
    exposed: tuple[int, ...] = ()  # EXPOSE of the final stage
    cmd: tuple[str, ...] = ()  # CMD of the final stage (exec form)
    entrypoint: tuple[str, ...] = ()  # ENTRYPOINT of the final stage (exec form)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        return _parse(text)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        return _parse(path.read_text())

    def base_reference(self, build_args: dict[str, str] | None = None) -> str:
        """The final stage's FROM with build arguments (else the ARG defaults) substituted."""
        if not self.stages:
            raise DevstackError("the Dockerfile has no FROM instruction")
        return substitute(self.stages[-1], {**self.arg_defaults, **(build_args or {})})


def logical_lines(text: str) -> list[str]:
    """Instruction lines: continuations (`\\` at the end) joined, blank and comment lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # a comment inside a continued instruction is skipped
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute(value: str, variables: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced from `variables`; an unknown name is an error (FROM would be empty)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise DevstackError(f"the Dockerfile uses ${name} but declares no ARG {name} before FROM; declare it")
        return variables[name]

    return _VARIABLE.sub(replace, value)


def _exec_form(args: str) -> tuple[str, ...]:
    import json

    try:
        value = json.loads(args)
    except ValueError:
        return ("/bin/sh", "-c", args)
    return tuple(str(item) for item in value)


def _key_values(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # the legacy `ENV NAME value` form
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def _parse(text: str) -> Dockerfile:
    arg_defaults: dict[str, str] = {}
    stages: list[str] = []
    copies: list[Copy] = []
    workdir, user = "/", ""
    env: dict[str, str] = {}
    exposed: list[int] = []
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    for line in logical_lines(text):
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "ARG" and not stages:
            name, _, default = args.partition("=")
            arg_defaults[name.strip()] = default.strip().strip('"')
        elif instruction == "FROM":
            stages.append(args.split()[0])
            workdir, user, env, exposed, cmd, entrypoint = "/", "", {}, [], (), ()
        elif instruction == "WORKDIR":
            workdir = args if args.startswith("/") else str(PurePosixPath(workdir) / args)
        elif instruction == "USER":
            user = args
        elif instruction == "ENV":
            env.update(_key_values(args))
        elif instruction == "EXPOSE":
            exposed.extend(int(port.split("/")[0]) for port in args.split())
        elif instruction == "CMD":
            cmd = _exec_form(args)
        elif instruction == "ENTRYPOINT":
            entrypoint = _exec_form(args)
        elif instruction in {"COPY", "ADD"}:
            words = shlex.split(args)
            flags = [word for word in words if word.startswith("--")]
            paths = [word for word in words if not word.startswith("--")]
            if any(flag.startswith("--from") for flag in flags) or len(paths) < 2:
                continue
            chown = next((flag.split("=", 1)[1] for flag in flags if flag.startswith("--chown=")), "")
            copies.append(Copy(tuple(paths[:-1]), paths[-1], workdir, chown))
    return Dockerfile(arg_defaults, tuple(stages), tuple(copies), user, workdir, env, tuple(exposed), cmd, entrypoint)


# ------------------------------------------------------------------------------------------- .dockerignore
@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    exclude: bool  # False for a `!` line (re-include)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go's filepath.Match plus `**`) as a regular expression over `/`-paths."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[i + 1 : end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 1
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


def ignore_rules(text: str) -> list[IgnoreRule]:
    """The rules of a `.dockerignore` text (comments and blank lines skipped, paths cleaned as Docker does)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        line = line.lstrip("!").strip()
        cleaned = str(PurePosixPath("/" + line)).lstrip("/")  # Docker cleans the path and drops a leading "/"
        if cleaned:
            rules.append(IgnoreRule(_pattern_regex(cleaned), exclude))
    return rules


def is_ignored(relative: str, rules: list[IgnoreRule]) -> bool:
    """Whether the context path `relative` (a/b/c) is left out: a rule matching it or one of its parent folders
    decides, the last matching rule winning."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = rule.exclude
    return ignored


def read_ignore(context: Path) -> list[IgnoreRule]:
    for name in (".containerignore", ".dockerignore"):  # buildah reads .containerignore first
        path = context / name
        if path.is_file():
            return ignore_rules(path.read_text())
    return []


def context_files(context: Path, dockerfile: Dockerfile, rules: list[IgnoreRule] | None = None) -> list[Path]:
    """The files of `context` that the Dockerfile's COPY/ADD instructions read (ignored ones left out), sorted.

    A source that names nothing is an error, as it is for the builder."""
    rules = read_ignore(context) if rules is None else rules
    found: set[Path] = set()
    for copy in dockerfile.copies:
        for source in copy.sources:
            matches = _expand(context, source)
            kept = [path for path in matches if not is_ignored(path.relative_to(context).as_posix(), rules)]
            if not matches:
                raise DevstackError(f"COPY {source} in the Dockerfile names nothing in the build context {context}")
            found.update(kept)
    return sorted(found)


def placements(context: Path, dockerfile: Dockerfile, rules: list[IgnoreRule] | None = None) -> dict[Path, str]:
    """{context file: its path in the image} for every file the COPY/ADD instructions put there (Docker's rules: a
    folder source copies its contents into the destination; a file goes into a destination ending in "/" or one
    of several sources (or is "."), else becomes the destination)."""
    rules = read_ignore(context) if rules is None else rules
    placed: dict[Path, str] = {}
    for copy in dockerfile.copies:
        destination = PurePosixPath(copy.workdir, copy.destination)
        for source in copy.sources:
            for root in _roots(context, source):
                if root.is_dir():
                    files = [path for path in root.rglob("*") if path.is_file() or path.is_symlink()]
                    pairs = [(path, destination / path.relative_to(root).as_posix()) for path in files]
                else:
                    into = copy.destination.endswith(("/", "/.")) or copy.destination == "." or len(copy.sources) > 1
                    pairs = [(root, destination / root.name if into else destination)]
                for path, target in pairs:
                    if not is_ignored(path.relative_to(context).as_posix(), rules):
                        placed[path] = str(target)
    return placed


def _roots(context: Path, source: str) -> list[Path]:
    cleaned = str(PurePosixPath("/" + source)).lstrip("/")
    if cleaned in ("", "."):
        return [context]
    if any(char in cleaned for char in "*?["):
        return sorted(
            path for path in context.glob(cleaned) if fnmatch.fnmatch(path.relative_to(context).as_posix(), cleaned)
        )
    return [context / cleaned] if (context / cleaned).exists() else []


def _expand(context: Path, source: str) -> list[Path]:
    files: list[Path] = []
    for root in _roots(context, source):
        if root.is_dir():
            files.extend(path for path in root.rglob("*") if path.is_file() or path.is_symlink())
        else:
            files.append(root)
    return files
