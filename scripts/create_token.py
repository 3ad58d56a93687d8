"""Creates a bearer token for an account on a deployed stack: make token ACCOUNT=acme STACK=webhooks-dev.

The token is printed once; only its SHA-256 hash is stored (TokensTable, from the stack's outputs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "shared"))

from webhooks.auth import TokenStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", required=True, help="CloudFormation stack name, e.g. webhooks-dev")
    parser.add_argument("--account", required=True, help="the account the token acts for")
    parser.add_argument("--description", default="", help="who or what uses it")
    parser.add_argument("--region", default=None)
    args = parser.parse_args()
    stack = boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
    token = TokenStore(outputs["TokensTableName"]).create(args.account, args.description)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
