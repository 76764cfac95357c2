"""`creditwatch status`, `history` and `silence` against a stack in moto that the real handlers
have run in: the stack is found through CloudFormation as a deployed one is."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from PIL import Image

from sandbox.harness import REGION, raw_template
from sandbox.simulator import Reply, balance
from tests.command import run

ON_STACK = ("--stack", "creditwatch", "--region", REGION)


@pytest.fixture
def deployed(stack):
    """The stack as CloudFormation describes it: its parameters and the table as an output."""
    parameters = raw_template()["Parameters"]
    template = {
        "Parameters": {
            name: {"Type": "String", "Default": parameters[name]["Default"]}
            for name in parameters
            if name in ("WarningThreshold", "CriticalThreshold")
        },
        "Resources": {"AlertTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BalancesTableName": {"Value": stack.table.name}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="creditwatch", TemplateBody=json.dumps(template)
    )
    return stack


def hourly(current, per_day, days):
    now = datetime.now(UTC).replace(microsecond=0)
    return [(now - timedelta(hours=h), Decimal(current) + Decimal(per_day) * h / 24) for h in range(days * 24, 0, -1)]


def fleet(stack, simulator):
    """cleanlist: ops burning 150 a day, research nearly empty; clado: a revoked key."""
    stack.seed_history("cleanlist", "ops", hourly("1234.5", 150, 3))
    simulator.script("cleanlist", "cleanlist-ops-key-0001", balance("cleanlist", "1234.5"))
    simulator.script("cleanlist", "cleanlist-research-0002", balance("cleanlist", "87.3"))
    simulator.script("clado", "clado-revoked-key-0003", Reply(401, {"detail": "Unauthorized"}))
    stack.put_secret(
        "cleanlist",
        {
            "accounts": [
                {"name": "ops", "api_key": "cleanlist-ops-key-0001"},
                {"name": "research", "api_key": "cleanlist-research-0002"},
            ]
        },
    )
    stack.put_secret("clado", {"accounts": [{"name": "outbound", "api_key": "clado-revoked-key-0003"}]})


def invoke(stack, simulator, provider):
    stack.invoke(provider, stack.environment(provider, simulator.base_url))


def test_status_shows_each_account_and_pool_as_the_functions_left_it(deployed, simulator):
    fleet(deployed, simulator)
    invoke(deployed, simulator, "cleanlist")
    invoke(deployed, simulator, "clado")
    # Only the STATE items carry `fleet`: the Accounts index holds them and nothing else.
    assert {item["sk"] for item in deployed.items() if "fleet" in item} == {"STATE"}
    assert sum(item["sk"] == "STATE" for item in deployed.items()) == 3
    rows = json.loads(run("status", *ON_STACK, "--json").stdout)
    by_account = {(row["provider"], row["account"]): row for row in rows}
    assert sorted(by_account) == [("clado", "outbound"), ("cleanlist", "ops"), ("cleanlist", "research")]
    ops = by_account[("cleanlist", "ops")]
    assert (ops["pool"], ops["remaining"], ops["level"], ops["alerts"]) == ("credits", "1234.5", "ok", [])
    # 150 a day, less a little when the run falls a second after the seeded hour
    assert Decimal(ops["burn_per_day"]) == pytest.approx(Decimal(150), abs=Decimal("0.1"))
    assert Decimal(ops["days_left"]) == pytest.approx(Decimal("8.23"), abs=Decimal("0.01"))
    research = by_account[("cleanlist", "research")]
    assert (research["level"], research["alerts"], research["days_left"]) == (
        "critical",
        ["low_credits critical"],
        None,
    )
    outbound = by_account[("clado", "outbound")]
    assert outbound["pool"] is None
    assert outbound["level"] == "failed"
    assert outbound["alerts"] == ["check_failed critical (1 in a row)"]
    table = run("status", *ON_STACK)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == f"creditwatch ({REGION})"
    assert lines[1].split()[:5] == ["provider", "account", "pool", "remaining", "level"]
    assert lines[2].split()[:5] == ["clado", "outbound", "-", "-", "failed"]


def test_a_top_up_shows_as_the_last_top_up(deployed, simulator):
    fleet(deployed, simulator)
    simulator.script("cleanlist", "cleanlist-ops-key-0001", balance("cleanlist", 9000))
    invoke(deployed, simulator, "cleanlist")
    (ops,) = [
        row for row in json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout) if row["account"] == "ops"
    ]
    assert ops["last_topup_at"] == ops["checked_at"]
    assert ops["remaining"] == "9000"


def test_a_silence_set_by_the_command_keeps_the_functions_quiet_and_shows_in_status(deployed, simulator):
    fleet(deployed, simulator)
    added = run(
        "silence",
        "add",
        "cleanlist",
        "--account",
        "research",
        "--until",
        "2h",
        "--reason",
        "top-up on its way",
        *ON_STACK,
    )
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("silenced: cleanlist account research, pool *, until ")
    invoke(deployed, simulator, "cleanlist")
    assert not any("research" in alert["Subject"] for alert in deployed.alerts())  # the critical alert was kept quiet
    rows = json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout)
    (research,) = [row for row in rows if row["account"] == "research"]
    assert research["level"] == "critical"
    (silenced,) = research["silenced"]
    assert silenced.endswith("(top-up on its way)")
    listed = run("silence", "list", *ON_STACK)
    header, row = listed.stdout.splitlines()
    assert header.split() == ["provider", "account", "pool", "until", "state", "keys", "who", "reason"]
    assert row.split()[:7] == ["cleanlist", "research", "*", silenced.split()[1], "active", "no", "user/moto"]
    assert run("silence", "remove", "cleanlist", "--account", "research", *ON_STACK).exit_code == 0
    assert run("silence", "list", *ON_STACK).stdout == "no active silences\n"
    again = run("silence", "remove", "cleanlist", "--account", "research", *ON_STACK)
    assert (again.exit_code, again.stderr) == (
        4,
        "creditwatch: no silence for cleanlist account 'research', pool '*'\n",
    )
    # Once the silence is gone, the next run catches up with what it kept quiet.
    invoke(deployed, simulator, "cleanlist")
    assert any("research" in alert["Subject"] for alert in deployed.alerts())


def test_a_silence_replaces_the_one_for_the_same_account_and_pool_and_an_ended_one_is_listed_with_all(deployed):
    first = run("silence", "add", "clodura", "--until", "1h", "--reason", "migration", "--who", "alice", *ON_STACK)
    assert first.stdout.startswith("silenced: clodura account *, pool *")
    assert first.stderr == ""
    typo = run("silence", "add", "clodura", "--account", "acmee", "--until", "1h", "--reason", "x", *ON_STACK)
    assert typo.exit_code == 0
    assert typo.stderr == "note: no clodura account 'acmee' has been checked yet\n"
    assert run("silence", "remove", "clodura", "--account", "acmee", *ON_STACK).exit_code == 0
    second = run("silence", "add", "clodura", "--until", "3h", "--reason", "longer migration", "--keys", *ON_STACK)
    assert second.stdout.startswith("replaced the silence: clodura account *, pool *")
    assert "Rejected keys are silenced too." in second.stdout
    deployed.table.put_item(
        Item={
            "pk": "clodura#",
            "sk": "SILENCE#old#*",
            "account": "old",
            "pool": "*",
            "until": "2026-01-01T00:00:00Z",
            "reason": "done",
            "who": "bob",
            "keys": False,
        }
    )
    rows = [line.split()[:6] for line in run("silence", "list", "clodura", "--all", *ON_STACK).stdout.splitlines()[1:]]
    assert [row[1] for row in rows] == ["*", "old"]
    assert [(row[4], row[5]) for row in rows] == [("active", "yes"), ("ended", "no")]
    listed = json.loads(run("silence", "list", "clodura", "--json", *ON_STACK).stdout)
    assert [(entry["account"], entry["state"], entry["keys"], entry["who"]) for entry in listed] == [
        ("*", "active", True, "user/moto")
    ]
    assert listed[0]["reason"] == "longer migration"
    assert json.loads(run("silence", "list", "clado", "--json", *ON_STACK).stdout) == []


def test_silence_list_reads_every_page(deployed, small_pages):
    for account in ("a", "b", "c", "d", "e"):
        assert (
            run(
                "silence", "add", "clodura", "--account", account, "--until", "1h", "--reason", "x", *ON_STACK
            ).exit_code
            == 0
        )
    listed = json.loads(run("silence", "list", "clodura", "--json", *ON_STACK).stdout)
    assert [entry["account"] for entry in listed] == ["a", "b", "c", "d", "e"]


def test_silence_items_written_by_another_hand_are_listed_escaped_or_skipped(deployed):
    """The table is shared: an item the command would have refused is shown with its control
    characters escaped, one line per silence, and an item that is no silence is left out."""
    until = "2099-01-01T00:00:00Z"
    items = [
        {"sk": "SILENCE#a#*", "account": "a", "until": until, "reason": "\x1b[2J\r\nclodura  z", "who": "x\x00"},
        {"sk": "SILENCE#b#*", "account": Decimal(5), "until": until},
        {"sk": "SILENCE#c#*", "account": "c", "until": "soon"},
        {"sk": "SILENCE#d#*", "account": "d", "until": until, "reason": Decimal(1)},
    ]
    for item in items:
        deployed.table.put_item(Item={"pk": "clodura#", **item})
    result = run("silence", "list", "clodura", *ON_STACK)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [["clodura", "a"]]
    assert lines[1].endswith("x\\x00  \\x1b[2J\\r\\nclodura  z")
    assert [entry["reason"] for entry in json.loads(run("silence", "list", "clodura", "--json", *ON_STACK).stdout)] == [
        "\x1b[2J\r\nclodura  z"
    ]


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("--until", "yesterday", "--reason", "x"), "--until: 'yesterday' is not a duration"),
        (("--until", "2020-01-01", "--reason", "x"), "--until: '2020-01-01' is not in the future"),
        (("--until", "2h", "--reason", " "), "--reason: 1-200 printable characters"),
        (("--until", "2h", "--reason", "x" * 201), "--reason: 1-200 printable characters"),
        (("--until", "2h", "--reason", "x", "--account", "bad name"), "--account: an account's name"),
        (("--until", "2h", "--reason", "x", "--pool", "Credits"), "--pool: a pool's name"),
        (("--until", "2h"), "Error: Missing option '--reason'"),
    ],
)
def test_an_invalid_silence_is_refused_naming_the_option(deployed, args, sentence):
    result = run("silence", "add", "cleanlist", *args, *ON_STACK)
    assert result.exit_code == 4
    assert sentence in result.stderr
    assert deployed.table.scan()["Items"] == []


def test_history_prints_the_series_as_a_table_or_csv(deployed, simulator):
    fleet(deployed, simulator)
    invoke(deployed, simulator, "cleanlist")
    csv = run("history", "cleanlist", "--account", "ops", "--csv", *ON_STACK)
    assert csv.exit_code == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0] == "observed_at,pool,remaining,limit"
    assert len(lines) == 1 + 72 + 1  # three days seeded hourly, and this run
    assert lines[-1].split(",")[1:] == ["credits", "1234.5", ""]
    table = run("history", "cleanlist", "--account", "ops", "--days", "1", *ON_STACK)
    assert table.stdout.splitlines()[0] == "cleanlist/ops, last 1 day(s)"
    balances = table.stdout.splitlines()[2:]  # under the title and the header: the last day's
    assert len(balances) in (24, 25)  # hourly, and this run; the seeded one a day old is on the edge
    several = run("history", "cleanlist", *ON_STACK)
    assert (several.exit_code, several.stderr) == (
        4,
        "creditwatch: cleanlist has 2 accounts (ops, research): pass --account\n",
    )


def test_history_draws_a_plot_with_thresholds_top_ups_and_the_forecast(deployed, simulator, tmp_path):
    fleet(deployed, simulator)
    simulator.script("cleanlist", "cleanlist-ops-key-0001", balance("cleanlist", 3000))  # a top-up
    invoke(deployed, simulator, "cleanlist")
    path = tmp_path / "ops.png"
    result = run("history", "cleanlist", "--account", "ops", "--plot", str(path), *ON_STACK)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"plotted 73 balances of cleanlist/ops credits to {path}\n"
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (1000, 500))


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        (("status", "--stack", "nope", "--region", REGION), {}, "no stack named 'nope' in us-east-1"),
        (("status", "--table", "nope", "--region", REGION), {}, "the table 'nope' in us-east-1 does not exist"),
        (
            ("status", "--table", "t"),
            {"AWS_DEFAULT_REGION": None, "AWS_REGION": None, "AWS_CONFIG_FILE": "none"},
            "no AWS region: pass --region",
        ),
        (("status", "--table", "t", "--region", "moon-1 !"), {}, "--region: not the name of an AWS region"),
        (("status", "--stack", "x" * 300, "--region", REGION), {}, "no stack named"),
        (("status", "--config-file", "none.toml", "--region", REGION), {}, "no stack: pass --stack or --table"),
        (
            ("status", *ON_STACK),
            {
                "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None,
                "AWS_SESSION_TOKEN": None,
                "AWS_SECURITY_TOKEN": None,
                "AWS_SHARED_CREDENTIALS_FILE": "none",
                "AWS_CONFIG_FILE": "none",
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            "no AWS credentials",
        ),
        (("history", "cleanlist", *ON_STACK), {}, "no cleanlist account has been checked yet in this table"),
        (("history", "acme", *ON_STACK), {}, "'acme' is not a defined provider"),
    ],
)
def test_a_missing_stack_table_region_or_credentials_is_one_sentence(deployed, args, env, sentence):
    result = run(*args, env=env)
    assert result.exit_code == 4
    assert sentence in result.stderr
    assert "Traceback" not in result.stderr


def test_the_stack_and_region_come_from_samconfig(deployed, tmp_path):
    config = tmp_path / "samconfig.toml"
    config.write_text(f'version = 0.1\n[default.global.parameters]\nstack_name = "creditwatch"\nregion = "{REGION}"\n')
    result = run("status", "--config-file", str(config), env={"AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": "none"})
    assert (result.exit_code, result.stdout) == (0, f"no accounts checked yet in {deployed.table.name} ({REGION})\n")


def test_an_account_whose_state_predates_the_index_is_listed_after_its_next_run(deployed, simulator):
    fleet(deployed, simulator)
    invoke(deployed, simulator, "cleanlist")
    alerts = len(deployed.alerts())
    deployed.table.update_item(Key={"pk": "cleanlist#ops", "sk": "STATE"}, UpdateExpression="REMOVE fleet")
    listed = {row["account"] for row in json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout)}
    assert listed == {"research"}
    invoke(deployed, simulator, "cleanlist")  # nothing changed: the state is rewritten once, indexed
    listed = {row["account"] for row in json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout)}
    assert listed == {"ops", "research"}
    assert len(deployed.alerts()) == alerts  # and no alert comes of it


def test_status_leaves_out_a_removed_account_unless_all(deployed, simulator):
    fleet(deployed, simulator)
    invoke(deployed, simulator, "cleanlist")
    deployed.put_secret("cleanlist", {"accounts": [{"name": "ops", "api_key": "cleanlist-ops-key-0001"}]})
    invoke(deployed, simulator, "cleanlist")  # retires research
    rows = json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout)
    assert [row["account"] for row in rows] == ["ops"]
    rows = json.loads(run("status", "cleanlist", "--all", *ON_STACK, "--json").stdout)
    by_account = {row["account"]: row for row in rows}
    assert sorted(by_account) == ["ops", "research"]
    assert (by_account["research"]["level"], by_account["research"]["alerts"]) == ("removed", [])


def test_status_shows_which_accounts_share_a_balance(deployed, simulator):
    fleet(deployed, simulator)
    for key in ("cleanlist-ops-key-0001", "cleanlist-research-0002"):  # one organisation's two keys
        simulator.script("cleanlist", key, balance("cleanlist", "87.3", organization_id="org_team"))
    invoke(deployed, simulator, "cleanlist")
    rows = {row["account"]: row for row in json.loads(run("status", "cleanlist", *ON_STACK, "--json").stdout)}
    assert sorted(rows) == ["@org_team", "ops", "research"]
    shared = rows["@org_team"]
    assert (shared["remaining"], shared["level"], shared["shared"]) == ("87.3", "critical", "ops, research")
    assert {(rows[a]["level"], rows[a]["shared"], rows[a]["remaining"]) for a in ("ops", "research")} == {
        ("shares", "@org_team", None)
    }
    table = run("status", "cleanlist", *ON_STACK)
    assert "@org_team" in table.stdout
    assert "shared" in table.stdout
