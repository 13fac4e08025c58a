"""Shell completion: `kattle completion bash|zsh` and kubectl's plugin completion.

Both run argcomplete over the same parser with the same completers (`attach`), which name
what the cluster has: processes (ProcessDefinitions), kinds (ResourceDefinitions), objects
(KIND/NAME), runs (pi/NAME), namespaces and kubeconfig contexts. Completion must never get
in the way of typing: a look-up is bounded (`LOOKUP_SECONDS`), and a cluster that cannot be
reached, or refuses, completes to nothing, silently.

kubectl (1.26 and later) completes `kubectl kattle ...` by running `kubectl_complete-kattle`
with the words after `kubectl kattle`, the last one the word being completed, and reads one
candidate a line and then cobra's ShellCompDirective as `:N`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from argcomplete import io as argcomplete_io
from argcomplete.completers import BaseCompleter, FilesCompleter
from argcomplete.finders import CompletionFinder
from argcomplete.shell_integration import shellcode

from kattle.cli import completers

LOOKUP_SECONDS = 2.0
# As kubectl completes: flags once a `-` is typed, and no file names unless asked for.
COMPLETE_OPTIONS = False
# cobra's ShellCompDirective bits, as kubectl reads them from a plugin.
NO_SPACE = 2
NO_FILE_COMP = 4
EXECUTABLES = ("kattle", "kubectl-kattle")
# Arguments completed with file names wherever they appear.
FILE_ARGUMENTS = {"kubeconfig", "filename", "to", "event", "object", "signing_key_file", "write"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "completion",
        help="print the shell completion script: `source <(kattle completion bash)`",
        description=(
            "Print the script that completes kattle and kubectl-kattle in bash or zsh, as "
            "`kubectl completion` does: add `source <(kattle completion bash)` to ~/.bashrc, "
            "or `source <(kattle completion zsh)` to ~/.zshrc. `kubectl kattle` completes "
            "through kubectl itself, with kubectl_complete-kattle, with no script."
        ),
    )
    parser.add_argument("shell", choices=["bash", "zsh"])
    parser.set_defaults(handler=_print_script)


def _print_script(args: argparse.Namespace) -> int:
    sys.stdout.write(shellcode(list(EXECUTABLES), shell=args.shell))
    return 0


def attach(parser: argparse.ArgumentParser) -> None:
    """Gives each argument of each command its completer, by what the argument names."""
    for command, subparser in _commands(parser):
        for action in subparser._actions:
            completer = _completer_for(command, action.dest)
            if completer is not None:
                action.completer = completer  # type: ignore[attr-defined]


def _commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _completer_for(command: str, dest: str) -> Callable[..., Any] | None:
    if dest in FILE_ARGUMENTS:
        return FilesCompleter()
    if dest == "namespace":
        return _bounded(completers.namespaces)
    if dest == "context":
        return completers.contexts
    if dest == "process" and command == "run":
        return _bounded(completers.processes)
    if dest == "target":
        return _bounded(completers.target_completer(command))
    return None


def _bounded(lookup: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """`lookup` run in a thread given LOOKUP_SECONDS twice over (connect, then read), and
    nothing if it fails or is late: a slow or unreachable cluster must not hang the shell."""

    def complete(**kwargs: Any) -> list[str]:
        found: list[str] = []

        def run() -> None:
            with contextlib.suppress(Exception):
                found.extend(lookup(lookup_seconds=LOOKUP_SECONDS, **kwargs))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(2 * LOOKUP_SECONDS)
        return list(found) if not thread.is_alive() else []

    return complete


class _Nothing(BaseCompleter):
    """For arguments with no completer: no candidates, rather than argcomplete's files."""

    def __call__(self, **_: Any) -> list[str]:
        return []


NOTHING = _Nothing()


def complete_words(words: Sequence[str]) -> list[str]:
    """The candidates for the last of `words` (the words after `kattle`), as the shell
    scripts would get them, without escaping or trailing spaces."""
    from kattle.cli.main import build_parser  # main imports this module for its parser

    parser = build_parser()
    line = "kattle " + " ".join([*(_quoted(w) for w in words[:-1]), words[-1] if words else ""])
    env = {
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_SUPPRESS_SPACE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_COMP_WORDBREAKS": "",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    output = io.StringIO()
    with _environment(env), _exits() as finished:
        _Finder()(
            parser,
            always_complete_options=COMPLETE_OPTIONS,
            exit_method=finished,
            output_stream=output,
            default_completer=NOTHING,
        )
    return [c.rstrip() for c in output.getvalue().split("\n") if c.strip()]


def _quoted(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'" if any(c in word for c in " \t'\"\\") else word


class _Finder(CompletionFinder):
    """argcomplete's finder, run in this process: its debug stream would take over file
    descriptor 9, which here may be anything the process has open."""

    def _init_debug_stream(self) -> None:
        argcomplete_io.debug_stream = sys.stderr


class _CompletedError(Exception):
    pass


@contextlib.contextmanager
def _exits() -> Iterator[Callable[[int], None]]:
    """An exit_method for argcomplete that ends the completion, not the process."""

    def finished(code: int = 0) -> None:
        raise _CompletedError(code)

    with contextlib.suppress(_CompletedError):
        yield finished


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def directive(candidates: Sequence[str]) -> int:
    """No file names from kubectl's shell; no space after a kind (`instance/`) or a flag's
    `=`, since a name or a value follows it."""
    if any(c.endswith(("/", "=")) for c in candidates):
        return NO_FILE_COMP | NO_SPACE
    return NO_FILE_COMP


def kubectl_complete(argv: Sequence[str] | None = None) -> int:
    """`kubectl_complete-kattle WORD...`: the candidates, one a line, then `:DIRECTIVE`.
    Never a traceback or a warning: what completion prints, the shell shows as candidates."""
    words = list(sys.argv[1:] if argv is None else argv) or [""]
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            candidates = complete_words(words)
        except Exception:  # completion that fails completes nothing, as kubectl's does
            candidates = []
    sys.stdout.write("".join(f"{c}\n" for c in candidates) + f":{directive(candidates)}\n")
    return 0
