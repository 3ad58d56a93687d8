"""API Gateway TOKEN authorizer: `Authorization: Bearer <token>` -> the token's account.

The policy allows the whole API, so API Gateway can cache it for every route of this token.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.auth import TokenStore, bearer_token
from webhooks.settings import get_settings

logger = Logger()
tokens = TokenStore(get_settings().tokens_table)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = bearer_token(event.get("authorizationToken"))
    account = tokens.account_for(token) if token else None
    if account is None:
        logger.info("unauthorized request")
        # This exact message makes API Gateway answer 401 instead of 500.
        raise Exception("Unauthorized")
    # methodArn: arn:aws:execute-api:{region}:{aws_account}:{api_id}/{stage}/{method}/{path}
    arn, _, path = event["methodArn"].partition("/")
    _, _, _, region, aws_account, api_id = arn.split(":")
    policy = APIGatewayAuthorizerResponse(
        principal_id=account,
        region=region,
        aws_account_id=aws_account,
        api_id=api_id,
        stage=path.split("/")[0],
        context={"account": account},
    )
    policy.allow_all_routes()
    return policy.asdict()
