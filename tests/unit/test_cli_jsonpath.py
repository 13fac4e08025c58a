"""kubectl's JSONPath templates (`-o jsonpath=`): the documented examples, as kubectl prints them.

The input and the examples are those of kubectl's reference page
(kubernetes.io/docs/reference/kubectl/jsonpath/). Where the page shows a map as Go prints
it (`map[cpu:4]`), the expected value is what kubectl 1.36 prints today, compact JSON
(`{"cpu":"4"}`), checked against the kubectl binary the integration tests build.
"""

from __future__ import annotations

import pytest

from kattle.cli.jsonpath import TemplateError, parse_template, render, translate_path
from kattle.cli.main import main

DOC_INPUT = {
    "kind": "List",
    "items": [
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
            "status": {
                "capacity": {"cpu": "4"},
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}],
            },
        },
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.2"},
            "status": {
                "capacity": {"cpu": "8"},
                "addresses": [
                    {"type": "LegacyHostIP", "address": "127.0.0.2"},
                    {"type": "another", "address": "127.0.0.3"},
                ],
            },
        },
    ],
    "users": [
        {"name": "myself", "user": {}},
        {"name": "e2e", "user": {"username": "admin", "password": "secret"}},
    ],
}


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("kind is {.kind}", "kind is List"),
        ("{.kind}", "List"),
        ("{['kind']}", "List"),
        ("{$.kind}", "List"),
        ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
        ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
        ("{.users[0].name}", "myself"),
        ("{.items[-1:].metadata.name}", "127.0.0.2"),
        (
            "{.items[*]['metadata.name', 'status.capacity']}",
            '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}',
        ),
        ('{.users[?(@.name=="e2e")].user.password}', "secret"),
        ('{.users[?(@.name!="e2e")].name}', "myself"),
        (
            "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
            '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] ',
        ),
        ("{range .items[*]}{.metadata.name}{'\\t'}{end}", "127.0.0.1\t127.0.0.2\t"),
        ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "127.0.0.1\n127.0.0.2\n"),
        ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", "127.0.0.1"),
        # kubectl's own behaviour, beyond the page: missing keys print nothing (its default
        # --allow-missing-template-keys), a range left open ends with the template, maps
        # and lists print as JSON with sorted keys, and the range body starts at each item.
        ("{.nope}", ""),
        ("{range .users[*]}{.name}", "myselfe2e"),
        ("{.users[1].user}", '{"password":"secret","username":"admin"}'),
        ("{range .users[*]}{@.name},{end}", "myself,e2e,"),
        ('x{"a\\"b"}', 'xa"b'),
        ("{.users[*].user.*}", "admin secret"),
    ],
)
def test_kubectls_documented_templates_print_what_kubectl_prints(
    template: str, printed: str
) -> None:
    assert render(parse_template(template), DOC_INPUT) == printed


def test_the_current_object_is_the_input() -> None:
    assert render(parse_template("{@}"), {"b": [1, True, None], "a": 1.5}) == (
        '{"a":1.5,"b":[1,true,null]}'
    )


@pytest.mark.parametrize(
    ("kubectl", "jsonpath_ng"),
    [
        (".kind", "$.'kind'"),
        ("@", "$"),
        ("$.kind", "$.'kind'"),
        (".items[*].metadata.name", "$.'items'[*].'metadata'.'name'"),
        ("..name", "$..'name'"),
        ("['kind']", "$.'kind'"),
        (".items[-1:]", "$.'items'[-1:]"),
        (".metadata.labels.kattle\\.dev/type", "$.'metadata'.'labels'.'kattle.dev/type'"),
        (
            ".items[*]['metadata.name', 'status.phase']",
            "$.'items'[*].'metadata'.'name'|$.'items'[*].'status'.'phase'",
        ),
        ('.users[?(@.name=="e2e")].user', "$.'users'[?(@.name==\"e2e\")].'user'"),
    ],
)
def test_paths_translate_to_jsonpath_ng(kubectl: str, jsonpath_ng: str) -> None:
    """One expression each; a union one for each of its paths, in order (`|` between)."""
    assert "|".join(translate_path(kubectl)) == jsonpath_ng


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        # kubectl's own words for each.
        ("{.x", "unclosed action"),
        ("{end}", "not in range, nothing to end"),
        ("{kind}", "unrecognized identifier kind"),
        ("{.users[}", "unterminated array"),
        ("{.a b}", "unrecognized identifier b"),
    ],
)
def test_bad_templates_are_refused_with_kubectls_reason(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason):
        parse_template(template)


def test_a_bad_template_ends_the_command_in_one_line_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No kubeconfig is read: the template fails first, as kubectl's does."""
    code = main(["history", "-o", "jsonpath={.status", "--kubeconfig", "/nonexistent"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "kattle history: error parsing jsonpath {.status, unclosed action\n"
