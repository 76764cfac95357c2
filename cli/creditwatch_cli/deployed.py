"""The deployed stack: where its table is, and what the command reads from and writes to it.

The stack's name and region come from flags, or from samconfig.toml as `sam deploy --guided`
wrote it; the table is the stack's `BalancesTableName` output. Items are read and written in
the functions' own data model (creditwatch.repository), never a copy of it.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import ClientError

from creditwatch.domain import Silence, iso, parse_iso
from creditwatch.repository import Repository, Stored, partition, query
from creditwatch_cli.errors import UserError


class Deployment(NamedTuple):
    stack: str | None
    region: str
    client: Any  # a low-level DynamoDB client, as the functions use
    table: str  # the table's name
    parameters: dict[str, str]  # the stack's parameters (empty when --table named the table)

    def repository(self, provider: str) -> Repository:
        return Repository(self.client, self.table, provider, retention_days=90)


def settings(config_file: Path, config_env: str) -> dict[str, str]:
    """stack_name, region and profile from samconfig.toml's global and deploy parameters, if any."""
    if not config_file.is_file():
        return {}
    try:
        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise UserError(f"{config_file.name}: not TOML") from None
    environment = document.get(config_env, {})
    found: dict[str, str] = {}
    for section in ("global", "deploy"):
        parameters = environment.get(section, {}).get("parameters", {})
        found |= {key: str(parameters[key]) for key in ("stack_name", "region", "profile") if key in parameters}
    return found


def connect(
    stack: str | None,
    region: str | None,
    table: str | None,
    config_file: Path,
    config_env: str,
    profile: str | None = None,
) -> Deployment:
    """The deployed stack's table (or the table named by --table) in the chosen region."""
    configured = settings(config_file, config_env)
    stack = stack or configured.get("stack_name")
    session = boto3.session.Session(
        region_name=region or configured.get("region"), profile_name=profile or configured.get("profile")
    )
    if not session.region_name:
        raise UserError("no AWS region: pass --region, set AWS_REGION, or deploy with `sam deploy --guided`")
    if table:
        return Deployment(stack, session.region_name, session.client("dynamodb"), table, {})
    if not stack:
        raise UserError("no stack: pass --stack or --table, or run from the folder with samconfig.toml")
    try:
        (described,) = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError":
            where = f"{stack[:128]!r} in {session.region_name}"
            raise UserError(f"no stack named {where}: check --stack and --region") from None
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    if "BalancesTableName" not in outputs:
        raise UserError(f"stack {stack!r} has no BalancesTableName output: is it a creditwatch stack?")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    client = session.client("dynamodb")
    return Deployment(stack, session.region_name, client, outputs["BalancesTableName"], parameters)


def accounts(deployment: Deployment, provider: str, retired: bool = False) -> list[str]:
    """The provider's accounts with a state (the sparse Accounts index): those monitored, or
    with `retired` those removed from every secret."""
    return deployment.repository(provider).accounts(retired)


def stored(deployment: Deployment, provider: str, names: list[str]) -> dict[str, Stored]:
    """Each account's state and recent balances, in the functions' batched reads."""
    found, unread = deployment.repository(provider).load(names)
    if unread:
        raise UserError(f"DynamoDB did not return the state of {len(unread)} {provider} account(s); try again")
    return found


def silences(deployment: Deployment, provider: str) -> list[Silence]:
    return deployment.repository(provider).silences()


class Snapshot(NamedTuple):
    at: datetime
    remaining: Decimal
    limit: Decimal | None


class TopUp(NamedTuple):
    at: datetime
    previous: Decimal
    balance: Decimal
    added: Decimal | None


def _items(deployment: Deployment, condition: str, **values: str) -> list[dict[str, Any]]:
    """The items of one partition's Query, as Python values."""
    request = {
        "TableName": deployment.table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": {f":{name}": {"S": value} for name, value in values.items()},
    }
    return list(query(deployment.client, **request))


def series(
    deployment: Deployment, provider: str, account: str, pool: str, since: datetime, until: datetime
) -> list[Snapshot]:
    """One pool's balances between two times: one Query over its snapshots."""
    low, high = (f"SNAP#{pool}#{iso(moment)}" for moment in (since, until))
    found = _items(
        deployment, "pk = :pk AND sk BETWEEN :low AND :high", pk=partition(provider, account), low=low, high=high
    )
    return [Snapshot(parse_iso(item["observed_at"]), Decimal(item["remaining"]), item.get("limit")) for item in found]


def topups(deployment: Deployment, provider: str, account: str, pool: str, since: datetime) -> list[TopUp]:
    """One pool's recorded top-ups since a time: one Query."""
    found = _items(
        deployment, "pk = :pk AND begins_with(sk, :topup)", pk=partition(provider, account), topup=f"TOPUP#{pool}#"
    )
    recorded = [
        TopUp(parse_iso(item["observed_at"]), item["previous"], item["balance"], item.get("added")) for item in found
    ]
    return [topup for topup in recorded if topup.at >= since]
