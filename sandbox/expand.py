"""Writes template.yaml with its Fn::ForEach loops expanded, as CloudFormation JSON.

`make lint` runs checkov on it: checkov does not expand AWS::LanguageExtensions itself, and
would otherwise never see the per-provider functions, secrets and log groups.
Usage: python -m sandbox.expand OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from sandbox.harness import ROOT, construct, expand_template


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads short-form intrinsics into their JSON form: !Ref X -> {"Ref": "X"}, !Sub s -> {"Fn::Sub": s}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value = construct(loader, node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def main(out: str) -> None:
    with (ROOT / "template.yaml").open() as handle:
        raw = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 (safe loader subclass)
    expanded = expand_template(raw)
    expanded["Transform"] = "AWS::Serverless-2016-10-31"  # the loops are gone
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # .aws-sam/ is not there in a fresh clone
    with open(out, "w") as handle:
        json.dump(expanded, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
