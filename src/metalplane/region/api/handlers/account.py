"""account/: the caller's own API tokens."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from metalplane.region.api.checks import mandatory
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Refused
from metalplane.region.services import users as svc

account = Handler("AccountHandler", "account/", "Manage the current logged-in user.")


@account.action("POST", "create_authorisation_token")
async def create_token(ctx: Ctx) -> dict:
    """Create an authorisation OAuth token and OAuth consumer.

    :param name: Optional name of the token that will be generated.
    :type name: unicode
    """
    token = await ctx.run(svc.create_token, ctx.me.id, ctx.params.str("name"))
    return {
        "token_key": token.token_key,
        "token_secret": token.token_secret,
        "consumer_key": token.consumer_key,
        "name": token.name,
    }


@account.action("GET", "list_authorisation_tokens")
async def list_tokens(ctx: Ctx) -> list:
    """List authorisation tokens available to the currently logged-in user."""
    tokens = await ctx.run(svc.list_tokens, ctx.me.id)
    return [{"name": t.name, "token": t.api_key} for t in tokens]


@account.action("POST", "delete_authorisation_token")
async def delete_token(ctx: Ctx) -> None:
    """Delete an authorisation OAuth token and the related OAuth consumer.

    :param token_key: The key of the token to be deleted.
    :type token_key: unicode
    """
    token_key = ctx.params.str("token_key")
    if not token_key:
        raise Refused("No provided token_key!")
    await ctx.run(svc.delete_token, ctx.me.id, token_key)


@account.action("POST", "update_token_name")
async def update_token_name(ctx: Ctx) -> Response:
    """Modify the consumer name of an authorisation OAuth token.

    :param token: The token key, or the whole API key (consumer_key:token_key:token_secret).
    :type token: unicode
    :param name: The new name of the token.
    :type name: unicode
    """
    token, name = mandatory(ctx.params, "token"), mandatory(ctx.params, "name")
    await ctx.run(svc.rename_token, ctx.me.id, token, name)
    return PlainTextResponse("Accepted", status_code=202)
