"""Writes the Helm chart's generated parts from their one source.

charts/kattle/crds/ holds the CRDs of `kattle crds`, templates/run-access-policy.yaml its
admission policy (so a value can leave it out), and charts/kattle/templates/samples/ holds the
samples in samples/, with the sample handler Service's namespace made the release's. A unit
test fails when the committed chart differs from what this writes.

    python hack/generate_chart.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kattle.api import crds

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "kattle"
SAMPLE_NAMESPACE = "kattle-system"
HEADER = "# Generated from {source} by `make generate`. Do not edit.\n"

# Template file -> the sample files it is made of.
SAMPLE_TEMPLATES = {
    "definitions.yaml": ["instance.yaml", "volume.yaml", "nic.yaml", "ipaddress.yaml"],
    "handlers.yaml": ["handlers.yaml"],
}


def sample_template(sources: list[str]) -> str:
    parts = []
    for name in sources:
        text = (ROOT / "samples" / name).read_text()
        if "{{" in text:
            raise ValueError(f"samples/{name} contains '{{{{', which Helm would read as a template")
        parts.append(
            text.replace(f"namespace: {SAMPLE_NAMESPACE}", "namespace: {{ .Release.Namespace }}")
        )
    source = ", ".join(f"samples/{name}" for name in sources)
    body = "---\n".join(part if part.endswith("\n") else part + "\n" for part in parts)
    return (
        "{{- if .Values.samples.enabled }}\n" + HEADER.format(source=source) + body + "{{- end }}\n"
    )


def policy_template() -> str:
    text = crds.policy_text()
    # The release's standard labels, where `kattle crds` has only its own.
    own = "  labels:\n    app.kubernetes.io/part-of: kattle\n"
    if own not in text:
        raise ValueError("the run access policy's labels changed: update generate_chart.py")
    text = text.replace(own, '  labels:\n    {{- include "kattle.labels" . | nindent 4 }}\n')
    return "{{- if .Values.runAccessPolicy.enabled }}\n" + text + "{{- end }}\n"


def rendered() -> dict[Path, str]:
    files = {CHART / "crds" / name: text for name, text in crds.rendered_files().items()}
    files[CHART / "templates" / "run-access-policy.yaml"] = policy_template()
    for template, sources in SAMPLE_TEMPLATES.items():
        files[CHART / "templates" / "samples" / template] = sample_template(sources)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the chart is stale")
    args = parser.parse_args()
    stale = [
        path for path, text in rendered().items() if not path.exists() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run `make generate`)", file=sys.stderr)
        return 1 if stale else 0
    crds.write_files(CHART / "crds", crds.rendered_files())
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
