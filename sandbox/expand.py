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

from sandbox.harness import ROOT, expand


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads short-form intrinsics into their JSON form: !Ref X -> {"Ref": "X"}, !Sub s -> {"Fn::Sub": s}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def main(out: str) -> None:
    with (ROOT / "template.yaml").open() as handle:
        raw = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 (safe loader subclass)
    defaults = {name: str(spec.get("Default", "")).split(",") for name, spec in raw["Parameters"].items()}
    expanded = expand(raw, defaults)
    expanded["Transform"] = "AWS::Serverless-2016-10-31"  # the loops are gone
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # .aws-sam/ is not there in a fresh clone
    with open(out, "w") as handle:
        json.dump(expanded, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
