"""The command's subcommands. Each returns its exit status; `Command.main` turns every error a
user can cause into one sentence on stderr and exit status 4, never a traceback."""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)

from creditwatch import providers
from creditwatch.config import ACCOUNT_NAME, Account, ConfigError, parse_thresholds
from creditwatch.domain import Level, Silence, Thresholds, iso
from creditwatch.forecast import forecast
from creditwatch.notifier import credits
from creditwatch.observability import LIBRARY_LOGGERS, logger
from creditwatch.providers import POOL
from creditwatch.redaction import clean
from creditwatch_cli import EXIT_UNUSABLE, checks, deployed, output, when
from creditwatch_cli.errors import UserError
from creditwatch_cli.keys import gather, provider, readable_by_others, variable

THRESHOLD_OPTIONS = ("--warning", "--critical")
SECRET_NAME_TEXT = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")  # an account named after a broken secret
MAX_REASON = 200
MAX_WHO = 100


def _sentence(error: BaseException) -> str:
    """An AWS or network failure in the project's own words."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials: set AWS_PROFILE, run `aws configure` or `aws sso login`, or pass --profile"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, ProfileNotFound):
        return "that AWS profile is not in your AWS config: check --profile or AWS_PROFILE"
    if isinstance(error, InvalidRegionError):
        return "--region: not the name of an AWS region"
    if isinstance(error, ParamValidationError):
        return "AWS cannot take one of the values given: check --stack, --table and --region"
    if isinstance(error, EndpointConnectionError):
        return "AWS could not be reached: check the network and --region"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "an error")
        operation = getattr(error, "operation_name", "a request")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"AWS denied {operation}: your credentials lack the permission (see the README's IAM for the command)"
            )
        if code in ("ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId"):
            return "your AWS credentials were refused or have expired: sign in again"
        return f"AWS refused {operation} ({code})"
    return f"AWS could not be reached ({type(error).__name__})"


class Command(click.Group):
    """Exit statuses: 0-3 from the subcommands; 4 for anything that stopped the command, with
    one sentence on stderr (a traceback only with --debug)."""

    debug = False

    def main(self, *args: Any, **kwargs: Any) -> Any:
        Command.debug = False
        try:
            status = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.ClickException as error:  # usage: a wrong option, a missing argument
            error.show()
            status = EXIT_UNUSABLE
        except click.Abort:
            click.echo("creditwatch: interrupted", err=True)
            status = EXIT_UNUSABLE
        except UserError as error:
            click.echo(f"creditwatch: {error}", err=True)
            status = EXIT_UNUSABLE
        except (BotoCoreError, ClientError) as error:
            self._explain(_sentence(error))
            status = EXIT_UNUSABLE
        except Exception as error:  # noqa: BLE001 (a bug: one sentence, the traceback with --debug)
            self._explain(f"unexpected {type(error).__name__}; run with --debug to see where")
            status = EXIT_UNUSABLE
        sys.exit(status or 0)

    def _explain(self, sentence: str) -> None:
        if Command.debug:
            click.echo(clean(traceback.format_exc()), err=True)
        click.echo(f"creditwatch: {sentence}", err=True)


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Log to stderr and show tracebacks (keys stay redacted).")
@click.version_option(package_name="creditwatch")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """creditwatch: credit balances of B2B data APIs, from a terminal, a cron job or a CI step."""
    Command.debug = debug
    if context.invoked_subcommand == "demo":  # the demo's functions log as deployed ones do
        return
    # The functions' JSON logs (theirs and botocore's, which share its handler) go to stderr,
    # and only with --debug: a terminal gets sentences, and stdout stays the output.
    logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    for name in (logger.name, *LIBRARY_LOGGERS):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.CRITICAL)


# Options shared by several subcommands.
def _aws(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--profile", help="AWS profile (default: samconfig.toml's for a stack, else AWS_PROFILE).")(
        function
    )
    return click.option("--region", help="AWS region (default: samconfig.toml's for a stack, else AWS_REGION).")(
        function
    )


class Where(NamedTuple):
    """Which deployed stack, or table, the command reads (the stack options)."""

    stack: str | None
    table: str | None
    region: str | None
    profile: str | None
    config_file: Path = Path("samconfig.toml")
    config_env: str = "default"

    def connect(self) -> deployed.Deployment:
        return deployed.connect(self.stack, self.region, self.table, self.config_file, self.config_env, self.profile)


def _where(command: Callable[..., int]) -> Callable[..., int]:
    """The stack options, handed to the command as one `where`."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        return command(*args, where=Where(*(kwargs.pop(name) for name in Where._fields)), **kwargs)

    options = [
        click.option("--stack", help="The stack's name (default: samconfig.toml's stack_name)."),
        click.option("--table", help="The table's name, instead of finding it through the stack."),
        click.option(
            "--config-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default="samconfig.toml",
            show_default=True,
            help="Where `sam deploy --guided` saved the stack name and region.",
        ),
        click.option("--config-env", default="default", show_default=True, help="The samconfig.toml environment."),
    ]
    return _options(_aws(wrapper), options)


def _options(function: Callable[..., Any], options: list[Callable[..., Any]]) -> Callable[..., Any]:
    """`options` applied in the order listed (in --help too)."""
    for option in reversed(options):
        function = option(function)
    return function


class Keys(NamedTuple):
    """Where the keys come from, and the thresholds to judge them by (the key options)."""

    warning: str
    critical: str
    keys_file: Path | None
    secret_id: str | None
    region: str | None
    profile: str | None

    def gather(self, names: tuple[str, ...]) -> dict[str, list[Account]]:
        if self.secret_id:  # the secret store reads through the default boto3 session
            boto3.setup_default_session(region_name=self.region, profile_name=self.profile)
        if self.keys_file and readable_by_others(self.keys_file):
            click.echo(f"note: other users can read {self.keys_file}, which holds keys: chmod 600 it", err=True)
        return gather(names, thresholds(self.warning, self.critical), _env(), self.keys_file, self.secret_id)


def _keys(command: Callable[..., int]) -> Callable[..., int]:
    """The key options, handed to the command as one `keys`."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        keys = Keys(*(kwargs.pop(name) for name in Keys._fields))
        return command(*args, keys=keys, **kwargs)

    options = [
        click.option(
            "--warning", envvar="WARNING_THRESHOLD", default="1000", show_default=True, help="Credits or a percentage."
        ),
        click.option(
            "--critical", envvar="CRITICAL_THRESHOLD", default="100", show_default=True, help="Credits or a percentage."
        ),
        click.option(
            "--keys-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A JSON file of provider name to what its secret holds.",
        ),
        click.option("--secret-id", help="Read the keys from a deployed secret (and its fleet, <secret>/<label>)."),
    ]
    return _options(_aws(wrapper), options)


def thresholds(warning: str, critical: str) -> Thresholds:
    try:
        return parse_thresholds(dict(zip(THRESHOLD_OPTIONS, (warning, critical), strict=True)), THRESHOLD_OPTIONS)
    except ConfigError as error:
        raise UserError(str(error)) from None


@contextmanager
def reading(deployment: deployed.Deployment) -> Iterator[None]:
    """A missing table is named, with its region."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            where = f"{deployment.table!r} in {deployment.region}"
            raise UserError(f"the table {where} does not exist: check --stack, --table and --region") from None
        raise


def _env() -> dict[str, str]:
    return dict(os.environ)


# providers -----------------------------------------------------------------------------------


@cli.command("providers")
def list_providers() -> int:
    """The defined providers: their pools, the variable for a key, and the operations whose
    costs their definitions document (for preflight --operation)."""
    rows = []
    for name in providers.names():
        definition = provider(name)
        costs = ", ".join(f"{operation} {cost}" for operation, cost in definition.costs.items())
        pools = ", ".join(pool.name for pool in definition.pools)
        rows.append([name, definition.title, pools, variable(name, "API_KEY"), costs or None])
    output.table(["provider", "title", "pools", "key variable", "operations (credits per record)"], rows)
    return checks.EXIT_OK


# check ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("names", metavar="[PROVIDER]...", nargs=-1)
@_keys
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pool; numbers as exact decimal text.")
def check(names: tuple[str, ...], keys: Keys, as_json: bool) -> int:
    """Check balances now. Exit status: 0 all ok, 1 some warning, 2 some critical, 3 a check
    failed (4: the command could not run)."""
    fleet = keys.gather(names)
    total = sum(map(len, fleet.values()))
    with output.progress(total, "checking") as step:
        results = checks.check(fleet, _env(), step)
    rows = checks.records(results)
    if as_json:
        output.as_json(rows)
    else:
        columns = ["provider", "account", "pool", "remaining", "limit", "percent", "level", "note"]
        output.table(columns, [[_shown(column, row) for column in columns] for row in rows])
    return checks.exit_status(results)


def _shown(column: str, row: dict[str, str | None]) -> str | None:
    value = row[column]
    if value is not None and column in ("remaining", "limit"):
        return credits(Decimal(value))
    if value is not None and column == "percent":
        return f"{value}%"
    return value


# preflight -----------------------------------------------------------------------------------


@cli.command()
@click.argument("name", metavar="PROVIDER")
@click.option("--need", help="Credits the batch will spend.")
@click.option("--records", type=click.IntRange(1, 10**9), help="Records in the batch (with --operation).")
@click.option("--operation", help="What each record costs, from the provider's definition (with --records).")
@click.option("--account", help="Which account (needed when the keys hold several).")
@click.option("--pool", help="Which pool (needed when the account reports several and none is `credits`).")
@_keys
@click.option("--json", "as_json", is_flag=True, help="The verdict as JSON.")
def preflight(
    name: str,
    need: str | None,
    records: int | None,
    operation: str | None,
    account: str | None,
    pool: str | None,
    keys: Keys,
    as_json: bool,
) -> int:
    """Will this batch fit? Exit status 0 when the balance covers it and the critical threshold,
    2 when it does not, 3 when the balance could not be checked."""
    definition = provider(name)
    if (need is None) == (records is None and operation is None) or (records is None) != (operation is None):
        raise click.UsageError("give --need CREDITS, or --records N with --operation NAME")
    if need is not None:
        amount = _credits(need, "--need")
        what = f"{credits(amount)} credits"
    else:
        assert records is not None
        assert operation is not None
        amount, what = checks.planned(definition, records, operation)
    fleet = keys.gather((definition.name,))
    chosen = _account(definition.name, fleet[definition.name], account)
    (result,) = checks.check({definition.name: [chosen]}, _env())
    try:
        verdict = checks.preflight(result, amount, what, pool)
    except checks.CheckFailed as failure:
        _verdict_out(as_json, {"fits": None, "sentence": f"not checked: {failure}"})
        return checks.EXIT_FAILED
    _verdict_out(
        as_json,
        {
            "fits": verdict.fits,
            "sentence": verdict.sentence,
            "provider": definition.name,
            "account": chosen.name,
            "pool": verdict.balance.pool,
            "remaining": str(verdict.balance.remaining),
            "need": str(verdict.need),
            "reserve": str(verdict.reserve),
        },
    )
    return checks.EXIT_OK if verdict.fits else checks.EXIT_CRITICAL


def _verdict_out(as_json: bool, verdict: dict[str, Any]) -> None:
    if as_json:
        output.as_json(verdict)
    else:
        click.echo(verdict["sentence"])


def _credits(text: str, option: str) -> Decimal:
    try:
        amount = Decimal(text.strip().replace(",", "")) if len(text) <= 40 else Decimal("NaN")
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount > Decimal("1E+28"):
        raise UserError(f"{option}: {text[:40]!r} is not a number of credits")
    return amount


def _account(provider_name: str, accounts: list[Any], wanted: str | None) -> Any:
    names = [account.name for account in accounts]
    if wanted is None and len(accounts) == 1:
        return accounts[0]
    if wanted in names:
        return accounts[names.index(wanted)]
    listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    if wanted is None:
        raise UserError(f"{provider_name} has {len(names)} accounts ({listed}): pass --account")
    raise UserError(f"--account: {provider_name} has no account {wanted[:64]!r} ({listed})")


# status --------------------------------------------------------------------------------------


@cli.command()
@click.argument("names", metavar="[PROVIDER]...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account and pool.")
@click.option("--all", "everything", is_flag=True, help="Also the accounts removed from every secret.")
@_where
def status(names: tuple[str, ...], as_json: bool, everything: bool, where: Where) -> int:
    """The deployed stack's view: per account and pool, the latest balance, level, burn rate,
    days until empty, last top-up, open alerts and active silences. Accounts removed from the
    secrets are left out, unless --all (their level: removed)."""
    chosen = [provider(name).name for name in names] or providers.names()
    deployment = where.connect()
    now = datetime.now(UTC)
    rows = []
    with reading(deployment):
        for name in chosen:
            accounts = deployed.accounts(deployment, name)
            accounts += deployed.accounts(deployment, name, retired=True) if everything else []
            found = deployed.stored(deployment, name, accounts) if accounts else {}
            silences = deployed.silences(deployment, name) if accounts else []
            for account in accounts:
                rows += _status_rows(name, account, found[account], silences, now)
    if as_json:
        output.as_json(rows)
        return checks.EXIT_OK
    if not rows:
        click.echo(f"no accounts checked yet in {deployment.table} ({deployment.region})")
        return checks.EXIT_OK
    columns = [
        "provider",
        "account",
        "pool",
        "remaining",
        "level",
        "burn/day",
        "days left",
        "last top-up",
        "checked",
        "alerts",
        "silenced",
        "shared",
    ]
    keys = [
        "provider",
        "account",
        "pool",
        "remaining",
        "level",
        "burn_per_day",
        "days_left",
        "last_topup_at",
        "checked_at",
        "alerts",
        "silenced",
        "shared",
    ]
    shown = [[_status_cell(key, row[key]) for key in keys] for row in rows]
    output.table(columns, shown, title=f"{deployment.stack or deployment.table} ({deployment.region})")
    return checks.EXIT_OK


def _status_cell(key: str, value: Any) -> str | None:
    if value is None or value == []:
        return None
    if key in ("remaining", "burn_per_day"):
        return credits(Decimal(value))
    if key == "days_left":
        return f"{Decimal(value):.1f}"
    if key in ("last_topup_at", "checked_at"):
        return str(value).replace("T", " ").removesuffix("Z")[:16]
    if isinstance(value, list):
        return "; ".join(value)
    return str(value)


def _status_rows(
    provider_name: str, account: str, stored: Any, silences: list[Silence], now: datetime
) -> list[dict[str, Any]]:
    state, at = stored.state, iso(now)
    account_alerts: list[str] = []
    if state.check > Level.OK:
        account_alerts.append(f"check_failed {state.check} ({state.failures} in a row)")
    elif state.failures:  # failing, not alerted yet (FailuresBeforeAlert)
        account_alerts.append(f"check failing ({state.failures} in a row)")
    if stored.outbox:
        account_alerts.append(f"{len(stored.outbox)} unsent")
    rows = []
    pools = sorted(set(stored.windows) | set(state.pools)) or [None]
    for pool in pools:
        window = stored.windows.get(pool) if pool else None
        latest = window.points[-1] if window and window.points else None
        prediction = forecast(window, latest.remaining) if window and latest else None
        pool_state = state.pools.get(pool) if pool else None
        alerts = list(account_alerts)
        if pool_state:
            for kind, level in (
                ("low_credits", pool_state.level),
                ("depletion_forecast", pool_state.forecast),
                ("burn_spike", pool_state.spike),
            ):
                if level > Level.OK:
                    alerts.append(f"{kind} {level}")
        covering = [s for s in silences if s.holds(account, at) and (pool is None or s.pool in ("*", pool))]
        if state.retired_at is not None:
            level = "removed"
        elif pool_state is not None:
            level = str(pool_state.level)
        elif state.check > Level.OK or state.failures:  # no balance of its own: what the checks say
            level = "failed" if state.check > Level.OK else "failing"
        else:
            level = "shares" if state.shares else "-"
        burn = prediction.burn_per_day if prediction else None
        days_left = prediction.days_left if prediction else None
        rows.append(
            {
                "provider": provider_name,
                "account": account,
                "pool": pool,
                "remaining": None if latest is None else str(latest.remaining),
                "level": level,
                "burn_per_day": None if burn is None else str(burn),
                "days_left": None if days_left is None else str(days_left),
                "last_topup_at": iso(window.last_topup_at) if window and window.last_topup_at else None,
                "checked_at": iso(latest.at) if latest else None,
                "alerts": alerts,
                "silenced": [f"until {s.until} ({s.reason})" for s in covering],
                # a key's shared balance, or a shared balance's accounts
                "shared": state.shares or (", ".join(state.members) if state.members else None),
            }
        )
    return rows


# history -------------------------------------------------------------------------------------


@cli.command()
@click.argument("name", metavar="PROVIDER")
@click.option("--account", help="Which account (needed when the provider has several).")
@click.option("--pool", help="Which pool (default: every pool; with --plot, `credits` or the only one).")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True, help="How far back.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw the history to this PNG file.")
@click.option("--csv", "as_csv", is_flag=True, help="The series as CSV.")
@click.option("--warning", help="The threshold line to draw (default: the stack's WarningThreshold).")
@click.option("--critical", help="The threshold line to draw (default: the stack's CriticalThreshold).")
@_where
def history(
    name: str,
    account: str | None,
    pool: str | None,
    days: int,
    plot: Path | None,
    as_csv: bool,
    warning: str | None,
    critical: str | None,
    where: Where,
) -> int:
    """A pool's balances over the last --days, one DynamoDB Query per pool."""
    definition = provider(name)
    deployment = where.connect()
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(days=days)
    with reading(deployment):
        accounts = deployed.accounts(deployment, definition.name)
        if account is not None and account not in accounts:
            raise UserError(f"--account: no {definition.name} account {account[:64]!r} has been checked")
        chosen = _one(definition.name, accounts, account)
        stored = deployed.stored(deployment, definition.name, [chosen])[chosen]
        pools = sorted(stored.windows) or sorted(stored.state.pools)
        if pool is not None and pool not in pools:
            raise UserError(f"--pool: {chosen} has no pool {pool[:40]!r} ({', '.join(pools) or 'none yet'})")
        if plot is not None and pool is None:
            pool = "credits" if "credits" in pools else pools[0] if len(pools) == 1 else None
            if pool is None:
                raise UserError(f"--plot draws one pool: pass --pool ({', '.join(pools)})")
        wanted = [pool] if pool else pools
        series = {p: deployed.series(deployment, definition.name, chosen, p, since, now) for p in wanted}
        if plot is not None:
            assert pool is not None
            topups = deployed.topups(deployment, definition.name, chosen, pool, since)
    columns = ["observed_at", "pool", "remaining", "limit"]
    rows = [
        [iso(s.at), p, str(s.remaining), None if s.limit is None else str(s.limit)]
        for p, points in series.items()
        for s in points
    ]
    if as_csv:
        output.as_csv(columns, rows)
    elif plot is None:
        output.table(columns, rows, title=f"{definition.name}/{chosen}, last {days} day(s)")
    if plot is not None:
        from creditwatch_cli import plot as plotting

        assert pool is not None
        points = series[pool]
        if not points:
            raise UserError(f"{definition.name}/{chosen} has no {pool} balances in the last {days} day(s) to plot")
        window = stored.windows.get(pool)
        capacity = points[-1].limit or (window.full_tank if window else None)
        lines = _lines(deployment.parameters, warning, critical, capacity)
        prediction = forecast(window, points[-1].remaining) if window and window.points else None
        title = f"{definition.title} {chosen} · {pool} · last {days} day(s)"
        plotting.draw(plot, title, points, topups, lines, prediction)
        click.echo(f"plotted {len(points)} balances of {definition.name}/{chosen} {pool} to {plot}", err=True)
    return checks.EXIT_OK


def _one(provider_name: str, accounts: list[str], wanted: str | None) -> str:
    if wanted is not None:
        return wanted
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        raise UserError(f"no {provider_name} account has been checked yet in this table")
    listed = ", ".join(accounts[:10]) + (", ..." if len(accounts) > 10 else "")
    raise UserError(f"{provider_name} has {len(accounts)} accounts ({listed}): pass --account")


def _lines(parameters: dict[str, str], warning: str | None, critical: str | None, capacity: Any) -> dict[str, Decimal]:
    """The threshold lines in credits; a percentage needs the pool's capacity."""
    chosen = thresholds(
        warning or parameters.get("WarningThreshold", "1000"), critical or parameters.get("CriticalThreshold", "100")
    )
    lines = {}
    for label, threshold in (("warning", chosen.warning), ("critical", chosen.critical)):
        line = threshold.credits(Decimal(capacity) if capacity is not None else None)
        if line is not None:
            lines[f"{label} {threshold}" if threshold.percent else label] = line
    return lines


# silence -------------------------------------------------------------------------------------


@cli.group()
def silence() -> None:
    """Keep alerts quiet for a while: a maintenance window, a top-up on its way."""


@silence.command("add")
@click.argument("name", metavar="PROVIDER")
@click.option("--account", default="*", show_default=True, help="One account, or * for all of them.")
@click.option("--pool", default="*", show_default=True, help="One pool, or * for all of them.")
@click.option("--until", "until_text", required=True, help="2h, 3d, 1w, friday, 2026-11-27 or 2026-11-27T17:00.")
@click.option("--reason", required=True, help="Why, for whoever sees the silence later.")
@click.option("--who", help="Who set it (default: your AWS identity).")
@click.option("--keys", is_flag=True, help="Silence rejected-key alerts too (by default they still go out).")
@_where
def silence_add(
    name: str,
    account: str,
    pool: str,
    until_text: str,
    reason: str,
    who: str | None,
    keys: bool,
    where: Where,
) -> int:
    """Silence a provider's alerts for an account and pool until a time."""
    definition = provider(name)
    _check_target(account, pool)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise UserError(f"--reason: 1-{MAX_REASON} printable characters")
    now = datetime.now(UTC)
    ends = when.until(until_text, now, datetime.now().astimezone().tzinfo or UTC)
    deployment = where.connect()
    if who is None:
        arn = (
            boto3.session.Session(profile_name=where.profile, region_name=deployment.region)
            .client("sts")
            .get_caller_identity()["Arn"]
        )
        who = arn.split(":", 5)[-1]
    if not who.strip() or len(who) > MAX_WHO or not who.isprintable():
        raise UserError(f"--who: 1-{MAX_WHO} printable characters")
    entry = Silence(account, pool, iso(ends), reason, who.strip(), keys)
    with reading(deployment):
        replaced = deployment.repository(definition.name).save_silence(entry)
        known = account == "*" or account in deployed.accounts(deployment, definition.name)
    if not known:  # a typo silences nothing: say so, but keep it for an account still to come
        click.echo(f"note: no {definition.name} account {account!r} has been checked yet", err=True)
    verb = "replaced the silence" if replaced else "silenced"
    scope = f"{definition.name} account {account}, pool {pool}"
    rejected = " Rejected keys are silenced too." if keys else " A rejected key still alerts (--keys to silence it)."
    click.echo(f"{verb}: {scope}, until {entry.until} ({ends.astimezone():%a %d %b %H:%M %Z}).{rejected}")
    return checks.EXIT_OK


def _check_target(account: str, pool: str) -> None:
    if account != "*" and not (ACCOUNT_NAME.fullmatch(account) or SECRET_NAME_TEXT.fullmatch(account)):
        raise UserError("--account: an account's name (letters, digits, '.', '_', '-'; 1-64), or *")
    if pool != "*" and not POOL.fullmatch(pool):
        raise UserError("--pool: a pool's name (lower-case letters, digits and '_'; 1-40), or *")


@silence.command("list")
@click.argument("names", metavar="[PROVIDER]...", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Include silences that have ended.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per silence.")
@_where
def silence_list(names: tuple[str, ...], everything: bool, as_json: bool, where: Where) -> int:
    """The silences, active first."""
    chosen = [provider(name).name for name in names] or providers.names()
    deployment = where.connect()
    at = iso(datetime.now(UTC))
    rows = []
    with reading(deployment):
        for name in chosen:
            for entry in deployed.silences(deployment, name):
                active = entry.until > at
                if active or everything:
                    rows.append({"provider": name, **entry._asdict(), "state": "active" if active else "ended"})
    rows.sort(key=lambda row: (row["state"] != "active", row["provider"], row["account"], row["pool"]))
    if as_json:
        output.as_json(rows)
    elif not rows:
        click.echo("no silences" if everything else "no active silences")
    else:
        columns = ["provider", "account", "pool", "until", "state", "keys", "who", "reason"]
        output.table(columns, [[_silence_cell(row[column]) for column in columns] for row in rows])
    return checks.EXIT_OK


def _silence_cell(value: str | bool) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else value


@silence.command("remove")
@click.argument("name", metavar="PROVIDER")
@click.option("--account", default="*", show_default=True, help="The silence's account, or *.")
@click.option("--pool", default="*", show_default=True, help="The silence's pool, or *.")
@_where
def silence_remove(name: str, account: str, pool: str, where: Where) -> int:
    """End a silence now. What it kept quiet and is still bad is alerted by the next run."""
    definition = provider(name)
    _check_target(account, pool)
    deployment = where.connect()
    with reading(deployment):
        removed = deployment.repository(definition.name).delete_silence(account, pool)
    if not removed:
        raise UserError(f"no silence for {definition.name} account {account!r}, pool {pool!r}")
    click.echo(f"removed the silence of {definition.name} account {account}, pool {pool}")
    return checks.EXIT_OK


# demo ----------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw one demo account's history (clado/enrichment) to this PNG file.",
)
def demo(plot: Path | None) -> int:
    """The real handlers of every provider against moto and the local simulator: no AWS account,
    no internet. Runs from a checkout of the repository (it is what `make demo` runs)."""
    try:
        from sandbox import demo as sandbox_demo
        from sandbox.harness import REGION, Stack
    except ModuleNotFoundError as error:
        raise UserError(
            f"the demo needs {error.name}: run it from a checkout with `make demo`, or pip install 'creditwatch[demo]'"
        ) from None

    def draw(stack: Stack) -> None:
        where = Where(stack=None, table=stack.table.name, region=REGION, profile=None)
        show_history = history.callback.__wrapped__  # type: ignore[union-attr]  # (the command, as a function)
        show_history("clado", "enrichment", None, 30, plot, False, None, None, where=where)

    sandbox_demo.main(draw if plot else None)
    return checks.EXIT_OK
