"""Where the command finds keys: the environment, a keys file, or a deployed secret.

One source per invocation, so that what was checked is never in doubt:
- the environment: `<PROVIDER>_API_KEY` holds a bare key or the secret's JSON;
- `--keys-file`: a JSON object of provider name to what its secret would hold, or, for one
  provider named on the command line, that provider's secret as it is;
- `--secret-id`: a deployed secret and its fleet (`<secret>/<label>`), as the function reads it.

`<PROVIDER>_BASE_URL` points a provider at another base URL (a proxy, or the simulator), under
the functions' https-or-loopback rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from creditwatch import providers
from creditwatch.config import Account, ConfigError, parse_base_url, parse_secret
from creditwatch.domain import Thresholds
from creditwatch.redaction import redact
from creditwatch_cli.errors import UserError

MAX_KEYS_FILE = 1024 * 1024  # bytes: a keys file holds keys, not data


def variable(provider: str, suffix: str) -> str:
    """`CLEANLIST_API_KEY`: the provider's name in upper case, `-` as `_`."""
    return f"{provider.upper().replace('-', '_')}_{suffix}"


def provider(name: str) -> providers.Provider:
    """A defined provider; an unknown name, or an invalid definition, is the user's to fix."""
    try:
        return providers.load(name)
    except ValueError as error:  # DefinitionError too: it names the file and the field
        raise UserError(str(error)) from None


def base_url(definition: providers.Provider, env: Mapping[str, str]) -> str:
    name = variable(definition.name, "BASE_URL")
    raw = env.get(name, "").strip()
    if not raw:
        return definition.base_url
    try:
        return parse_base_url(raw)
    except ConfigError as error:
        raise UserError(f"{name}{str(error).removeprefix('BASE_URL')}") from None


def gather(
    requested: tuple[str, ...],
    defaults: Thresholds,
    env: Mapping[str, str],
    keys_file: Path | None = None,
    secret_id: str | None = None,
) -> dict[str, list[Account]]:
    """Each provider to check and its accounts; every key is redacted from logs from here on.

    Requested providers must each have a key; with none requested, every defined provider
    that has one is checked."""
    for name in requested:
        provider(name)
    if secret_id:
        found = _from_secret(secret_id, requested, defaults)
    elif keys_file:
        found = _from_file(keys_file, requested, defaults)
    else:
        found = _from_environment(requested, defaults, env)
    redact.add(account.api_key for accounts in found.values() for account in accounts if account.api_key)
    if not found:
        raise UserError(
            "no keys found: set <PROVIDER>_API_KEY (CLODURA_API_KEY, ...), or pass --keys-file or --secret-id"
        )
    return found


def _parse(raw: str | bytes, defaults: Thresholds, where: str) -> list[Account]:
    try:
        return parse_secret(raw, defaults)
    except ConfigError as error:
        raise UserError(f"{where}: {error}") from None


def _from_environment(requested: tuple[str, ...], defaults: Thresholds, env: Mapping[str, str]) -> dict[str, Any]:
    secrets = {name: env.get(variable(name, "API_KEY"), "") for name in providers.names()}
    return _accounts(
        requested,
        secrets,
        defaults,
        where=lambda name: variable(name, "API_KEY"),
        missing=lambda name: f"no key for {name}: set {variable(name, 'API_KEY')}, or pass --keys-file or --secret-id",
    )


def _accounts(
    requested: tuple[str, ...],
    secrets: Mapping[str, str],
    defaults: Thresholds,
    where: Callable[[str], str],
    missing: Callable[[str], str],
) -> dict[str, Any]:
    """Each provider's accounts from what its secret would hold; a requested one must have some."""
    found = {}
    for name in requested or tuple(secrets):
        raw = secrets.get(name, "")
        accounts = _parse(raw, defaults, where(name)) if raw.strip() else []
        if accounts:
            found[name] = accounts
        elif requested:
            raise UserError(missing(name))
    return found


def _from_file(path: Path, requested: tuple[str, ...], defaults: Thresholds) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_KEYS_FILE + 1)
    except OSError as error:
        raise UserError(
            f"--keys-file: cannot read {str(path)[:200]!r} ({error.strerror or type(error).__name__})"
        ) from None
    if len(text) > MAX_KEYS_FILE:
        raise UserError(f"--keys-file: larger than {MAX_KEYS_FILE} bytes")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise UserError("--keys-file: not JSON (see the README for its format)") from None
    if not isinstance(document, dict):
        raise UserError("--keys-file: must be a JSON object of provider name to that provider's secret")
    if "accounts" in document or "api_key" in document:  # one provider's secret, as it is
        if len(requested) != 1:
            raise UserError("--keys-file holds one provider's secret: name that provider, as in `check clodura`")
        document = {requested[0]: document}
    for name in document:
        if not isinstance(name, str) or name not in providers.names():
            raise UserError(
                f"--keys-file: {str(name)[:40]!r} is not a defined provider ({', '.join(providers.names())})"
            )
    secrets = {
        name: value if isinstance(value, str) else "" if value is None else json.dumps(value)
        for name, value in document.items()
    }
    return _accounts(
        requested,
        secrets,
        defaults,
        where=lambda name: f"--keys-file: {name}",
        missing=lambda name: f"no key for {name} in --keys-file",
    )


def readable_by_others(path: Path) -> bool:
    """True when a keys file's mode lets other users read it (as ssh warns of a private key)."""
    try:
        return bool(path.stat().st_mode & 0o044)
    except OSError:
        return False


def _from_secret(secret_id: str, requested: tuple[str, ...], defaults: Thresholds) -> dict[str, Any]:
    from creditwatch.secret_store import load_accounts, secret_name

    name = secret_name(secret_id)
    if len(requested) > 1:
        raise UserError("--secret-id holds one provider's keys: name at most one provider")
    owner = requested[0] if requested else name.rsplit("/", 1)[-1]
    if owner not in providers.names():
        raise UserError(f"--secret-id: cannot tell the provider from {name[:200]!r}: name it, as in `check clodura`")
    try:
        accounts = load_accounts(name, defaults)
    except ConfigError:
        raise UserError(f"--secret-id: no secret named {name[:200]!r} in this account and region") from None
    if not accounts:
        raise UserError(f"no key for {owner}: {name[:200]!r} still holds the placeholder")
    return {owner: accounts}
