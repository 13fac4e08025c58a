"""kubectl's conventions in the CLI without a cluster: `-o name`, `--request-timeout`,
impersonation and timeouts on the client, completion candidates, `--dry-run` misuse."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kattle.cli.completers import Kind, process_candidates, resource_kinds, target_candidates
from kattle.cli.completion import NO_FILE_COMP, NO_SPACE, complete_words, directive
from kattle.cli.kube import CommandError, api_client, parse_request_timeout
from kattle.cli.main import main
from kattle.cli.output import names, resource_name


@pytest.mark.parametrize(
    ("obj", "line"),
    [
        (
            {
                "apiVersion": "kattle.dev/v1alpha1",
                "kind": "ProcessInstance",
                "metadata": {"name": "web-1.start-x"},
            },
            "processinstance.kattle.dev/web-1.start-x",
        ),
        (
            {"apiVersion": "test.kattle.dev/v1", "kind": "Instance", "metadata": {"name": "a"}},
            "instance.test.kattle.dev/a",
        ),
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
            "namespace/team-a",
        ),
    ],
)
def test_o_name_prints_kind_dot_group_slash_name_as_kubectl_get(
    obj: dict[str, Any], line: str
) -> None:
    assert resource_name(obj) == line
    assert names(obj) == line + "\n"
    assert names({"apiVersion": "v1", "kind": "List", "items": [obj, obj]}) == f"{line}\n" * 2
    assert names({"apiVersion": "v1", "kind": "List", "items": []}) == ""


@pytest.mark.parametrize(
    ("flag", "seconds"),
    [
        ("0", None),  # kubectl: zero means no timeout
        ("0s", None),
        ("5", 5.0),  # a bare number is seconds
        ("5s", 5.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("250us", 0.00025),
    ],
)
def test_request_timeout_reads_kubectls_durations(flag: str, seconds: float | None) -> None:
    assert parse_request_timeout(flag) == pytest.approx(seconds)


@pytest.mark.parametrize("flag", ["", "abc", "5 s", "-1", "1d", "s", "1m-"])
def test_request_timeout_refuses_what_kubectl_refuses(flag: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        parse_request_timeout(flag)


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": "main",
                        "context": {"cluster": "c", "user": "u", "namespace": "team-a"},
                    },
                    {"name": "other", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "main",
            }
        )
    )
    return path


def _args(kubeconfig: Path, *flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    from kattle.cli.kube import add_connection_flags

    add_connection_flags(parser, all_namespaces=True)
    return parser.parse_args([f"--kubeconfig={kubeconfig}", *flags])


def test_the_client_carries_the_identity_timeout_and_namespace_asked_for(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    api, namespace = api_client(
        _args(config, "--as=jane", "--as-group=dev", "--as-group=ops", "--request-timeout=7s")
    )
    assert namespace == "team-a"  # the context's
    assert api.default_headers["Impersonate-User"] == "jane"
    assert api.impersonate_groups == ("dev", "ops")
    assert api.request_timeout == 7.0
    plain, namespace = api_client(_args(config, "--context=other", "-n", "x"))
    assert namespace == "x"
    assert "Impersonate-User" not in plain.default_headers
    assert plain.request_timeout is None
    with pytest.raises(CommandError, match="give --as too"):
        api_client(_args(config, "--as-group=dev"))


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that takes connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_request_timeout_ends_a_request_the_server_does_not_answer(
    tmp_path: Path, silent_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _kubeconfig(tmp_path / "config", silent_server)
    started = time.monotonic()
    code = main(["history", "-A", f"--kubeconfig={config}", "--request-timeout=1s"])
    took = time.monotonic() - started
    assert code == 1
    assert capsys.readouterr().err == (
        "kattle history: the server did not answer within --request-timeout\n"
    )
    assert took < 5, f"took {took:.1f}s: a retry or no timeout"


def test_dry_run_with_wait_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "run",
            "instance.start",
            "instance/web-1",
            "--dry-run=server",
            "--wait",
            "--kubeconfig=/nonexistent",
        ]
    )
    assert code == 1
    assert capsys.readouterr().err == (
        "kattle run: --dry-run=server creates no run to wait for: drop --wait\n"
    )


def test_a_name_across_all_namespaces_is_refused_as_kubectl_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    assert main(["history", "instance/web-1", "-A", f"--kubeconfig={config}"]) == 1
    assert capsys.readouterr().err == (
        "kattle history: a resource cannot be retrieved by name across all namespaces\n"
    )


DEFINITIONS = [
    {
        "metadata": {"name": "instance"},
        "spec": {"names": {"kind": "Instance", "plural": "instances", "shortNames": ["in"]}},
    },
    {"metadata": {"name": "volume"}, "spec": {"names": {"kind": "Volume", "plural": "volumes"}}},
]
OBJECTS = {"instance": ["web-1", "web-2", "db-1"], "volume": ["db-1-data"]}


def _kinds() -> list[Kind]:
    return resource_kinds(DEFINITIONS, lambda d: OBJECTS[d["metadata"]["name"]])


@pytest.mark.parametrize(
    ("prefix", "candidates"),
    [
        ("", ["instance/", "volume/"]),
        ("i", ["instance/"]),
        ("In", ["instance/"]),
        ("x", []),
        ("instance/", ["instance/db-1", "instance/web-1", "instance/web-2"]),
        ("instance/web", ["instance/web-1", "instance/web-2"]),
        ("instances/d", ["instances/db-1"]),  # under the kind as typed: plural
        ("in/w", ["in/web-1", "in/web-2"]),  # short name
        ("volume/", ["volume/db-1-data"]),
        ("nothing/", []),
    ],
)
def test_targets_complete_kinds_then_their_objects(prefix: str, candidates: list[str]) -> None:
    assert target_candidates(prefix, _kinds()) == candidates


def test_processes_complete_from_process_definitions() -> None:
    definitions = [
        {"metadata": {"name": n}} for n in ("instance.stop", "instance.start", "volume.x")
    ]
    assert process_candidates("instance.s", definitions) == ["instance.start", "instance.stop"]
    assert process_candidates("", definitions)[-1] == "volume.x"


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ([], NO_FILE_COMP),
        (["instance.start"], NO_FILE_COMP),
        (["instance/", "volume/"], NO_FILE_COMP | NO_SPACE),
        (["jsonpath="], NO_FILE_COMP | NO_SPACE),
    ],
)
def test_the_directive_asks_kubectl_for_no_files_and_no_space_after_a_kind(
    candidates: list[str], expected: int
) -> None:
    assert directive(candidates) == expected


@pytest.mark.parametrize(
    ("words", "candidates"),
    [
        (["ru"], ["run"]),
        (["run", "--dry"], ["--dry-run"]),
        (["run", "--dry-run", ""], ["client", "none", "server"]),
        (["history", "-o", "js"], ["json", "jsonpath="]),
        (["completion", ""], ["bash", "zsh"]),
    ],
)
def test_words_complete_from_the_parser(words: list[str], candidates: list[str]) -> None:
    assert sorted(complete_words(words)) == candidates


def test_kubectl_plugin_completion_without_a_cluster_says_only_its_directive(
    tmp_path: Path,
) -> None:
    """No kubeconfig that works: nothing to complete, no traceback, at once."""
    script = Path(sys.executable).parent / "kubectl_complete-kattle"
    started = time.monotonic()
    done = subprocess.run(
        [str(script), "run", ""],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"KUBECONFIG": str(tmp_path / "missing"), "PATH": "/usr/bin:/bin"},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, ":4\n", "")
    assert time.monotonic() - started < 10


def test_completion_prints_the_script_to_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete " in script
    assert "kattle kubectl-kattle" in script
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef kattle kubectl-kattle")
