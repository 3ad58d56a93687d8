"""webhooks.auth: the authorizer's policy, built by hand, is the one Powertools would build."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
)

from webhooks.auth import allow_all_policy, bearer_token


@pytest.mark.parametrize(
    "method_arn",
    [
        "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/hooks",
        "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/POST/hooks/hk_1/secret/rotate",
        "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/$default/GET/",
    ],
)
def test_allow_all_policy_is_powertools_allow_all_routes(method_arn: str) -> None:
    arn, _, path = method_arn.partition("/")
    _, _, _, region, aws_account, api_id = arn.split(":")
    expected = APIGatewayAuthorizerResponse(
        principal_id="acct-1",
        region=region,
        aws_account_id=aws_account,
        api_id=api_id,
        stage=path.split("/")[0],
        context={"account": "acct-1"},
    )
    expected.allow_all_routes()
    assert allow_all_policy("acct-1", method_arn, {"account": "acct-1"}) == expected.asdict()


def test_allow_all_policy_keeps_the_partition_of_the_method() -> None:
    policy = allow_all_policy("a", "arn:aws-cn:execute-api:cn-north-1:123456789012:api/prod/GET/x", {})
    assert policy["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws-cn:execute-api:cn-north-1:123456789012:api/prod/*/*"
    ]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer wht_12345678", "wht_12345678"),
        ("bearer  wht_12345678 ", "wht_12345678"),
        ("Bearer short", None),
        ("Basic wht_12345678", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
