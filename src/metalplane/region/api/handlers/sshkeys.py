"""account/prefs/sshkeys/ and account/prefs/sslkeys/: the caller's SSH and SSL keys."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api import render_accounts as render
from metalplane.region.api.app import json_response
from metalplane.region.api.checks import path_id
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import sshkeys as svc

sshkeys = Handler("SSHKeysHandler", "account/prefs/sshkeys/", "Manage the collection of all the SSH keys in this MAAS.")
sshkey = Handler("SSHKeyHandler", "account/prefs/sshkeys/{id}/", "Manage an SSH key.")
sslkeys = Handler("SSLKeysHandler", "account/prefs/sslkeys/", "Operations on multiple keys.")
sslkey = Handler("SSLKeyHandler", "account/prefs/sslkeys/{id}/", "Manage an SSL key.")


@sshkeys.read
async def list_ssh_keys(ctx: Ctx) -> list:
    """List all keys belonging to the requesting user."""
    return [render.sshkey(k) for k in await ctx.run(svc.list_ssh_keys, ctx.me)]


@sshkeys.create
async def create_ssh_key(ctx: Ctx) -> Response:
    """Add a new SSH key to the requesting or supplied user's account.

    The key is parsed (types ecdsa-sha2-nistp256/384/521, ssh-dss, ssh-ed25519,
    ssh-rsa) and stored re-encoded with its comment; anything else is refused.

    :param key: A public SSH key: "key-type base64-key-data [comment]".
    :type key: unicode
    :param user: (admins only) The user to add the key for.
    :type user: unicode
    """
    key = await ctx.run(svc.create_ssh_key, ctx.me, ctx.params.str("key"), ctx.params.str("user"))
    return json_response(render.sshkey(key), status=201)


@sshkeys.action("POST", "import")
async def import_ssh_keys(ctx: Ctx) -> list:
    """Import the requesting user's SSH keys from Launchpad or GitHub.

    Fetched over HTTPS (the region's proxy environment applies) within 15
    seconds; without internet access the answer is one 503 line naming the
    host that could not be reached.

    :param keysource: The source of the keys, protocol:auth_id: lp:USER (Launchpad) or gh:USER (GitHub);
        a bare USER means Launchpad.
    :type keysource: unicode
    """
    imported = await svc.import_ssh_keys(ctx.work, ctx.me, ctx.params.str("keysource"))
    return [render.sshkey(k) for k in imported.keys]


@sshkey.read
async def read_ssh_key(ctx: Ctx) -> dict:
    """Retrieve an SSH key."""
    key_id = path_id(ctx, "id", "SSHKey")
    return render.sshkey(await ctx.run(svc.get_ssh_key, key_id))


@sshkey.delete
async def delete_ssh_key(ctx: Ctx) -> None:
    """Delete an SSH key (only the owner may)."""
    key_id = path_id(ctx, "id", "SSHKey")
    await ctx.run(svc.delete_ssh_key, ctx.me, key_id)


@sslkeys.read
async def list_ssl_keys(ctx: Ctx) -> list:
    """List all keys belonging to the requesting user."""
    return [render.sslkey(k) for k in await ctx.run(svc.list_ssl_keys, ctx.me)]


@sslkeys.create
async def create_ssl_key(ctx: Ctx) -> Response:
    """Add a new SSL key (a PEM certificate) to the requesting user's account.

    :param key: An SSL key: the contents of a PEM file.
    :type key: unicode
    """
    key = await ctx.run(svc.create_ssl_key, ctx.me, ctx.params.str("key"))
    return json_response(render.sslkey(key), status=201)


@sslkey.read
async def read_ssl_key(ctx: Ctx) -> dict:
    """Retrieve an SSL key (only the owner may)."""
    key_id = path_id(ctx, "id", "SSLKey")
    return render.sslkey(await ctx.run(svc.get_ssl_key, ctx.me, key_id))


@sslkey.delete
async def delete_ssl_key(ctx: Ctx) -> None:
    """Delete an SSL key (only the owner may)."""
    key_id = path_id(ctx, "id", "SSLKey")
    await ctx.run(svc.delete_ssl_key, ctx.me, key_id)
