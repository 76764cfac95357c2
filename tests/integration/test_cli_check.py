"""`creditwatch check` and `creditwatch preflight` against the provider simulator (and moto for
--secret-id): tables, JSON, exit statuses, and one clear sentence for every user mistake."""

import json
import socket

import pytest

from creditwatch import providers
from sandbox.simulator import Reply, balance, prospect
from tests.command import run

from .conftest import leaked

# Keys that share no 8 characters with anything the command prints (a provider's name, a number).
KEYS = {
    "clodura": "Zq81Rw5tYp-aaaa",
    "cleanlist": "Hm4VxK2eLs-bbbb",
    "leadmagic": "Qw7NcT9jUb-cccc",
    "clado": "Pf3GyD6rWo-dddd",
}


def keyed(simulator, **providers):
    """Environment for the named providers: each key, and the simulator as its base URL."""
    env = {}
    for name, reply in providers.items():
        simulator.script(name, KEYS[name], reply)
        env[f"{name.upper()}_API_KEY"] = KEYS[name]
        env[f"{name.upper()}_BASE_URL"] = simulator.base_url
    return env


def leaked_by(result) -> list[str]:
    return leaked(result.stdout + result.stderr, *KEYS.values())


@pytest.mark.parametrize(
    ("reply", "status", "level"),
    [
        (balance("cleanlist", 5000), 0, "ok"),
        (balance("cleanlist", "999.5"), 1, "warning"),
        (balance("cleanlist", 100), 2, "critical"),
        (Reply(402, {"detail": "Payment Required"}), 2, "critical"),
        (Reply(401, {"detail": "Invalid API key"}), 3, "failed"),
        (Reply(200, "<html>Bad Gateway</html>"), 3, "failed"),
    ],
)
def test_the_exit_status_is_the_worst_level_and_3_for_a_failed_check(simulator, reply, status, level):
    result = run("check", "--json", env=keyed(simulator, cleanlist=reply))
    assert result.exit_code == status, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["provider"], row["account"], row["level"]) == ("cleanlist", "default", level)
    assert not leaked_by(result)


def test_every_configured_provider_and_account_is_checked_into_one_table(simulator):
    env = keyed(
        simulator,
        clodura=prospect(contacts_used=845, max_contacts=1000, dials_used=10, max_dials=200),
        leadmagic=balance("leadmagic", "15432.50"),
    )
    result = run("check", "--warning", "20%", "--critical", "5%", env=env)
    assert result.exit_code == 1, result.stderr  # 15.5% of contact views left: a warning
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["provider", "account", "pool", "remaining", "limit", "percent", "level", "note"]
    body = [line.split() for line in lines[1:]]
    assert body == [
        ["clodura", "default", "contact_views", "155", "1,000", "15.5%", "warning", "-"],
        ["clodura", "default", "direct_dials", "190", "200", "95.0%", "ok", "-"],
        ["leadmagic", "default", "credits", "15,432.5", "-", "-", "ok", "-"],
    ]
    assert simulator.calls_to("clado") == simulator.calls_to("cleanlist") == 0  # no key, not checked


def test_a_keys_file_holds_several_providers_and_accounts_with_their_own_thresholds(simulator, tmp_path):
    simulator.script("cleanlist", "cleanlist-ops-key-0001", balance("cleanlist", 400))
    simulator.script("cleanlist", "cleanlist-research-0002", balance("cleanlist", 400))
    simulator.script("clado", KEYS["clado"], balance("clado", 20000))
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "cleanlist": {
                    "accounts": [
                        {"name": "ops", "api_key": "cleanlist-ops-key-0001"},
                        {"name": "research", "api_key": "cleanlist-research-0002", "warning_threshold": "300"},
                    ]
                },
                "clado": KEYS["clado"],
            }
        )
    )
    keys.chmod(0o600)
    env = {"CLEANLIST_BASE_URL": simulator.base_url, "CLADO_BASE_URL": simulator.base_url}
    result = run("check", "--keys-file", str(keys), "--json", env=env)
    assert result.stderr == ""
    rows = {(row["provider"], row["account"]): row["level"] for row in json.loads(result.stdout)}
    assert rows == {("clado", "default"): "ok", ("cleanlist", "ops"): "warning", ("cleanlist", "research"): "ok"}
    assert result.exit_code == 1
    # One provider's secret as it is, for the provider named on the command line.
    keys.write_text(json.dumps({"accounts": [{"name": "ops", "api_key": "cleanlist-ops-key-0001"}]}))
    keys.chmod(0o644)
    result = run("check", "cleanlist", "--keys-file", str(keys), "--json", env=env)
    assert [row["account"] for row in json.loads(result.stdout)] == ["ops"]
    assert result.stderr == f"note: other users can read {keys}, which holds keys: chmod 600 it\n"


def test_an_invalid_entry_is_a_failed_check_naming_its_field_while_the_others_are_checked(simulator, tmp_path):
    simulator.script("cleanlist", "cleanlist-ops-key-0001", balance("cleanlist", 5000))
    keys = tmp_path / "keys.json"
    accounts = [{"name": "ops", "api_key": "cleanlist-ops-key-0001"}, {"name": "bad", "api_key": "short"}]
    keys.write_text(json.dumps({"cleanlist": {"accounts": accounts}}))
    result = run("check", "--keys-file", str(keys), "--json", env={"CLEANLIST_BASE_URL": simulator.base_url})
    assert result.exit_code == 3
    rows = {row["account"]: row for row in json.loads(result.stdout)}
    assert rows["ops"]["level"] == "ok"
    assert rows["bad"]["level"] == "failed"
    assert "accounts[1].api_key" in rows["bad"]["note"]


def test_a_deployed_secret_and_its_fleet_are_read_with_secret_id(simulator, stack):
    simulator.script("leadmagic", "leadmagic-main-0001", balance("leadmagic", 5000))
    simulator.script("leadmagic", "leadmagic-client-0002", balance("leadmagic", 50))
    stack.put_secret("leadmagic", {"accounts": [{"name": "main", "api_key": "leadmagic-main-0001"}]})
    stack.put_secret("leadmagic", "leadmagic-client-0002", label="client-a")
    args = ("check", "--secret-id", stack.secret_name("leadmagic"), "--region", "us-east-1", "--json")
    result = run(*args, env={"LEADMAGIC_BASE_URL": simulator.base_url})
    assert result.exit_code == 2, result.stderr
    rows = {row["account"]: row["level"] for row in json.loads(result.stdout)}
    assert rows == {"main": "ok", "client-a": "critical"}
    assert "leadmagic-main-0001" not in result.stdout + result.stderr
    missing = run("check", "leadmagic", "--secret-id", "creditwatch/nothing", "--region", "us-east-1")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "creditwatch: --secret-id: no secret named 'creditwatch/nothing' in this account and region\n",
    )


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_network_failure_is_a_failed_check_with_a_reason(monkeypatch):
    from creditwatch import http

    monkeypatch.setattr(http, "BACKOFF_FACTOR", 0.01)
    env = {"CLADO_API_KEY": KEYS["clado"], "CLADO_BASE_URL": closed_port()}
    result = run("check", env=env)
    assert result.exit_code == 3
    assert "could not be reached" in result.stdout
    assert not leaked_by(result)


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        (("check", "acme"), {}, f"creditwatch: 'acme' is not a defined provider ({', '.join(providers.names())})"),
        (("check",), {}, "creditwatch: no keys found: set <PROVIDER>_API_KEY"),
        (
            ("check", "clado"),
            {"CLEANLIST_API_KEY": KEYS["cleanlist"]},
            "creditwatch: no key for clado: set CLADO_API_KEY",
        ),
        (("check",), {"CLADO_API_KEY": "short"}, "creditwatch: CLADO_API_KEY: secret: must be 8-1024 visible ASCII"),
        (
            ("check",),
            {"CLADO_API_KEY": KEYS["clado"], "CLADO_BASE_URL": "http://api.example.com"},
            "creditwatch: CLADO_BASE_URL: must be an https:// URL",
        ),
        (("check", "--keys-file", "missing.json"), {}, "creditwatch: --keys-file: cannot read 'missing.json'"),
        (("check", "--warning", "5", "--critical", "50"), {}, "creditwatch: --critical: 50 is above the warning"),
        (("check", "--frobnicate"), {}, "Error: No such option '--frobnicate'"),
        (("preflight", "cleanlist"), {}, "Error: give --need CREDITS, or --records N with --operation NAME"),
    ],
)
def test_a_user_mistake_is_one_sentence_and_status_4_without_a_traceback(args, env, sentence):
    result = run(*args, env=env)
    assert result.exit_code == 4
    assert sentence in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not leaked_by(result)


def test_a_bug_is_one_sentence_too_and_its_traceback_is_redacted_under_debug(simulator, monkeypatch):
    from creditwatch_cli import checks

    def broken(*_):
        raise RuntimeError(f"exploded near {KEYS['clado']}")

    monkeypatch.setattr(checks, "records", broken)
    env = keyed(simulator, clado=balance("clado", 5000))
    quiet = run("check", env=env)
    assert (quiet.exit_code, quiet.stderr) == (
        4,
        "creditwatch: unexpected RuntimeError; run with --debug to see where\n",
    )
    loud = run("--debug", "check", env=env)
    assert loud.exit_code == 4
    assert "Traceback" in loud.stderr
    assert "exploded near …dddd" in loud.stderr  # the key, as it does everywhere, shows its last 4 only
    assert KEYS["clado"] not in loud.stderr


def test_preflight_says_whether_a_batch_fits_and_gates_on_it(simulator):
    env = keyed(simulator, cleanlist=balance("cleanlist", "1234.5"))
    fits = run("preflight", "cleanlist", "--records", "100", "--operation", "full", env=env)
    assert fits.exit_code == 0
    assert fits.stdout.startswith("ok: cleanlist/default has 1,234.5 credits; 100 records of full need up to 1,100")
    short = run("preflight", "cleanlist", "--records", "5000", "--operation", "phone", env=env)
    assert short.exit_code == 2
    assert short.stdout == (
        "not enough: cleanlist/default has 1,234.5 credits; 5,000 records of phone need up to 50,000 credits"
        " (10 each), and 100 must stay for the critical threshold. Top up at least 48,865.5 credits first,"
        " at https://portal.cleanlist.ai (Settings > Billing).\n"
    )
    verdict = json.loads(run("preflight", "cleanlist", "--need", "1200", "--json", env=env).stdout)
    assert verdict["fits"] is False
    assert (verdict["remaining"], verdict["need"], verdict["reserve"]) == ("1234.5", "1200", "100")


def test_preflight_of_a_key_that_does_not_work_is_status_3(simulator):
    env = keyed(simulator, cleanlist=Reply(401, {"detail": "Invalid API key"}))
    result = run("preflight", "cleanlist", "--need", "10", env=env)
    assert result.exit_code == 3
    assert result.stdout == (
        "not checked: cleanlist/default could not be checked: the API key was rejected (HTTP 401)\n"
    )


def test_preflight_asks_which_account_and_pool_when_there_are_several(simulator, tmp_path):
    simulator.script("clodura", "clodura-a-key-0001", prospect(100, 1000, 10, 200))
    simulator.script("clodura", "clodura-b-key-0002", balance("clodura", 5000))
    keys = tmp_path / "keys.json"
    accounts = [{"name": "a", "api_key": "clodura-a-key-0001"}, {"name": "b", "api_key": "clodura-b-key-0002"}]
    keys.write_text(json.dumps({"clodura": {"accounts": accounts}}))
    env = {"CLODURA_BASE_URL": simulator.base_url}
    base = ("preflight", "clodura", "--need", "50", "--keys-file", str(keys))
    assert "clodura has 2 accounts (a, b): pass --account" in run(*base, env=env).stderr
    assert "reports the pools contact_views, direct_dials: pass --pool" in run(*base, "--account", "a", env=env).stderr
    result = run(*base, "--account", "a", "--pool", "direct_dials", env=env)
    assert (result.exit_code, result.stdout.split(";")[0]) == (0, "ok: clodura/a has 190 credits in direct_dials")
    assert run(*base, "--account", "b", env=env).exit_code == 0


def test_providers_lists_the_registry_with_each_key_variable_and_documented_operation():
    result = run("providers")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(providers.names())
    clodura = next(line for line in lines if line.startswith("clodura"))
    assert "credits, contact_views, direct_dials" in clodura
    assert "CLODURA_API_KEY" in clodura
    assert "reveal_phone 10-20" in clodura


def test_debug_logs_go_to_stderr_with_every_key_redacted(simulator):
    env = keyed(
        simulator, clado=Reply(401, {"detail": "Invalid key " + KEYS["clado"]}), leadmagic=balance("leadmagic", 9)
    )
    result = run("--debug", "check", "--json", env=env)
    assert result.exit_code == 3
    assert json.loads(result.stdout)  # stdout is the output alone
    assert '"level":"DEBUG"' in result.stderr  # urllib3's and botocore's records, through the functions' handler
    assert not leaked_by(result)
