"""API Gateway TOKEN authorizer: `Authorization: Bearer <token>` -> the token's account.

The policy allows the whole API, so API Gateway can cache it for every route of this token.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.auth import TokenStore, allow_all_policy, bearer_token
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
    # Built by hand, not with Powertools' APIGatewayAuthorizerResponse: importing that imports every
    # event data class Powertools has, which would add tens of ms to each cold start.
    return allow_all_policy(account, event["methodArn"], {"account": account})
