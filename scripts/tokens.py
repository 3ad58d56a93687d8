"""Bearer tokens of a deployed stack: create, list, revoke.

    make token ACCOUNT=acme [DESCRIPTION=…]    python scripts/tokens.py create --account acme
    make tokens [ACCOUNT=acme]                 python scripts/tokens.py list
    make revoke-token TOKEN_ID=…               python scripts/tokens.py revoke TOKEN_ID

The stack and its region come from samconfig.toml (`--config-env`, default `default`), as `sam deploy`
takes them; `--stack` / `--region` (make: STACK=, REGION=, CONFIG_ENV=) override them. A token is printed
once, at creation: only its SHA-256 hash is stored (TokensTable, from the stack's outputs). A revoked token
stops working within 5 minutes (API Gateway caches the authorizer's answer that long).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "shared"))

from webhooks import aws
from webhooks.auth import TokenStore

ROOT = Path(__file__).resolve().parent.parent


def deploy_settings(
    config_env: str, samconfig: Path = ROOT / "samconfig.toml"
) -> tuple[str | None, str | None]:
    """(stack name, region) that `sam deploy --config-env <config_env>` uses, from samconfig.toml."""
    if not samconfig.exists():
        return None, None
    config = tomllib.loads(samconfig.read_text()).get(config_env, {})

    def setting(name: str) -> str | None:
        for command in ("deploy", "global"):
            value = config.get(command, {}).get("parameters", {}).get(name)
            if value:
                return str(value)
        return None

    return setting("stack_name"), setting("region")


def tokens_table(stack: str) -> str:
    described = boto3.client("cloudformation").describe_stacks(StackName=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    return str(outputs["TokensTableName"])


def _when(seconds: int | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else "-"


def _row(token: dict[str, Any]) -> str:
    revoked = f"revoked {_when(token['revoked_at'])}" if token["revoked_at"] else "active"
    return "\t".join(
        [token["id"], token["account"], _when(token["created_at"]), revoked, token["description"]]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default, prod)")
    parser.add_argument("--stack", default=None, help="CloudFormation stack name (default: samconfig.toml's)")
    parser.add_argument("--region", default=None, help="AWS region (default: samconfig.toml's)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new token for an account, printed once")
    create.add_argument("--account", required=True, help="the account the token acts for")
    create.add_argument("--description", default="", help="who or what uses it")
    listing = commands.add_parser("list", help="the tokens (id, account, created, state, description)")
    listing.add_argument("--account", default=None, help="only this account's")
    revoke = commands.add_parser("revoke", help="revoke one token by its id, as listed")
    revoke.add_argument("token_id")
    args = parser.parse_args(argv)

    stack, region = deploy_settings(args.config_env)
    stack, region = args.stack or stack, args.region or region
    if not stack:
        parser.error("no stack: give --stack (STACK=) or set stack_name in samconfig.toml")
    if region:
        # Every AWS call of this run, the token store's included, goes to the deploy's region.
        boto3.setup_default_session(region_name=region)
        aws.reset()
    store = TokenStore(tokens_table(stack))
    if args.command == "create":
        try:
            print(store.create(args.account, args.description))
        except ValueError as exc:
            parser.error(str(exc))
    elif args.command == "list":
        print("id\taccount\tcreated\tstate\tdescription")
        for token in store.tokens(args.account):
            print(_row(token))
    else:
        try:
            print(_row(store.revoke(args.token_id)))
        except LookupError as exc:
            print(f"not revoked: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
