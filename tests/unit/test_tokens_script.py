"""scripts/tokens.py (make token, tokens, revoke-token) against a stack on moto, in samconfig's region."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts import tokens
from tests.conftest import ROOT
from webhooks import aws
from webhooks.auth import TokenStore

STACK = {
    "Resources": {
        "TokensTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "token_hash", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "token_hash", "KeyType": "HASH"}],
            },
        }
    },
    "Outputs": {"TokensTableName": {"Value": {"Ref": "TokensTable"}}},
}


@pytest.fixture(autouse=True)
def default_session() -> Iterator[None]:
    # The script points boto3's default session at the deploy's region; other tests must not inherit it.
    yield
    boto3.DEFAULT_SESSION = None
    aws.reset()


@pytest.fixture
def deployed() -> Iterator[TokenStore]:
    """webhooks-dev in samconfig.toml's region, which is not the environment's default (us-east-1)."""
    stack_name, region = tokens.deploy_settings("default")
    assert region != boto3.session.Session().region_name
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=region)
        cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(STACK))
        outputs = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
        table = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TokensTableName")
        yield RegionalTokens(table, region)


class RegionalTokens(TokenStore):
    """The test's own view of the deployed table, in its region whatever the default session says."""

    def __init__(self, table_name: str, region: str | None) -> None:
        super().__init__(table_name)
        self.region = region

    @property
    def table(self) -> Any:
        return boto3.resource("dynamodb", region_name=self.region).Table(self.table_name)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = tokens.main(argv)
    return code, capsys.readouterr().out.splitlines()


def test_the_deploy_settings_come_from_samconfig() -> None:
    assert tokens.deploy_settings("default") == ("webhooks-dev", "eu-west-1")
    assert tokens.deploy_settings("prod") == ("webhooks-prod", "eu-west-1")
    assert tokens.deploy_settings("nothing") == (None, None)


def test_tokens_are_created_listed_and_revoked_on_the_deployed_stack(
    deployed: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, [token] = run(capsys, "create", "--account", "acme", "--description", "CRM sync")
    assert code == 0
    assert deployed.account_for(token) == "acme"
    run(capsys, "create", "--account", "other")

    code, lines = run(capsys, "list", "--account", "acme")
    assert code == 0
    [row] = [line.split("\t") for line in lines[1:]]
    token_id, account, _, state, description = row
    assert (account, state, description) == ("acme", "active", "CRM sync")
    assert token not in "\n".join(lines)  # only a prefix of its hash, never the token
    assert len(run(capsys, "list")[1]) == 3

    code, [revoked] = run(capsys, "revoke", token_id)
    assert code == 0
    assert revoked.split("\t")[3].startswith("revoked ")
    assert deployed.account_for(token) is None
    assert run(capsys, "list", "--account", "other")[1][1].split("\t")[3] == "active"


def test_revoking_an_unknown_or_ambiguous_id_revokes_nothing(
    deployed: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    token = deployed.create("acme")
    assert run(capsys, "revoke", "0" * 16)[0] == 1
    assert run(capsys, "revoke", "abc")[0] == 1  # too short to name one token
    assert deployed.account_for(token) == "acme"


def test_the_stack_in_another_region_is_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="webhooks-dev", TemplateBody=json.dumps(STACK)
        )
        with pytest.raises(Exception, match="does not exist"):
            tokens.main(["list"])
        assert tokens.main(["--region", "us-east-1", "list"]) == 0


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["token", "ACCOUNT=acme"], '--config-env "default" create --account "acme"'),
        (
            ["tokens", "REGION=us-west-2", "STACK=other"],
            '--config-env "default" --stack "other" --region "us-west-2" list',
        ),
        (["revoke-token", "TOKEN_ID=0123abcd", "CONFIG_ENV=prod"], '--config-env "prod" revoke "0123abcd"'),
    ],
)
def test_the_make_targets_pass_their_settings_on(target: list[str], expected: str) -> None:
    commands = subprocess.run(
        ["make", "-n", "--no-print-directory", *target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    assert f"scripts/tokens.py {expected}" in " ".join(commands.split()), commands
