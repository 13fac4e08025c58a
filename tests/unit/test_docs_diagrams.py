"""docs/diagrams/ is drawn from the samples by `kattle dot`: the committed DOT is current."""

from __future__ import annotations

import pytest

from kattle.cli.main import main
from tests.support.paths import REPO, SAMPLES

DOCS = REPO / "docs" / "diagrams"


@pytest.mark.parametrize("target", ["rd/instance", "pd/instance.start"])
def test_committed_diagrams_match_the_samples(
    target: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    files = ["-f", str(SAMPLES / "instance.yaml"), "-f", str(SAMPLES / "handlers.yaml")]
    assert main(["dot", target, *files]) == 0
    drawn = capsysbinary.readouterr().out.decode()
    name = target.partition("/")[2]
    assert (DOCS / f"{name}.dot").read_text() == drawn, "run `make diagrams`"
    for picture in ("svg", "png"):
        assert (DOCS / f"{name}.{picture}").exists()


def test_drawing_from_files_explains_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dot", "rd/nothing", "-f", str(SAMPLES / "instance.yaml")]) == 1
    assert "no ResourceDefinition 'nothing' in" in capsys.readouterr().err
