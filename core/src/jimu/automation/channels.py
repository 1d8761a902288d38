"""The built-in message channels: the in-app inbox, email over SMTP, and generic HTTP.

A site configures named channel instances in ``site.toml``::

    [plugins.settings.automation.channels.email]
    type = "email"
    host = "smtp.example.com"
    port = 587
    sender = "store@example.com"

    [plugins.settings.automation.channels.sms]
    type = "http"
    url = "https://sms.example.com/send"
    body = '{"phone": {{ to|tojson }}, "text": {{ body|tojson }}}'

The ``inbox`` channel needs no configuration. An HTTP channel's ``body`` is a
template over ``to``, ``subject``, ``body`` and ``key``; with ``sign =
"dingtalk"`` and a ``secret`` the URL carries a DingTalk robot signature, and
WeCom robots need only their webhook URL and a body like
``{"msgtype": "text", "text": {"content": {{ body|tojson }}}}``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import smtplib
import time
import urllib.parse
from collections.abc import Mapping
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from jimu.automation.actions import IDEMPOTENCY_HEADER, post_json
from jimu.automation.registry import ActionRetry, AutomationRegistry, Channel, Message, ParamProblem
from jimu.automation.store import time_param
from jimu.automation.templates import check_template, render

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["EmailChannel", "HttpChannel", "InboxChannel", "builtin_channels", "channel_config"]


def channel_config(
    site: Site, registry: AutomationRegistry, name: str
) -> tuple[str, Mapping[str, Any]]:
    """The kind and configuration of the channel instance ``name`` on ``site``.

    Raises :class:`LookupError` naming the configured channels when there is none.
    """
    configured = site.config.plugin_settings.get("automation", {}).get("channels", {})
    config = configured.get(name)
    if config is None:
        if name in registry.channels and not registry.channels[name].needs_config:
            return name, {}
        known = sorted(
            {*configured, *(k for k, c in registry.channels.items() if not c.needs_config)}
        )
        raise LookupError(f"no channel named {name!r} (configured: {', '.join(known) or 'none'})")
    kind = config.get("type", name)
    if kind not in registry.channels:
        raise LookupError(
            f"channel {name!r} has type {kind!r}, which no plugin provides "
            f"(types: {', '.join(sorted(registry.channels))})"
        )
    return kind, config


class InboxChannel(Channel):
    """The in-app inbox of a user: ``to`` is the user's id (``{{ lead.owner }}``)."""

    kind = "inbox"
    external = False
    needs_config = False

    async def send(self, site: Site, config: Mapping[str, Any], message: Message) -> Any:
        if message.to.startswith("role:"):
            from jimu.auth import users_with_role

            users = [user.id for user in await users_with_role(site, message.to[5:])]
            if not users:
                raise LookupError(f"no active user holds role {message.to[5:]!r}")
            keys = [f"{message.key}:{user_id}" for user_id in users]
        else:
            try:
                users = [int(message.to)]
            except ValueError:
                raise ValueError(
                    f"inbox messages go to a user id or role:<name>, not {message.to!r}"
                ) from None
            keys = [message.key]
        delivered = []
        for key, user_id in zip(keys, users, strict=True):
            row = await site.db.fetch_one(
                "INSERT INTO jimu_inbox (key, user_id, title, body, entity, record_id, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}) ON CONFLICT (key) DO NOTHING RETURNING id",
                [
                    key,
                    user_id,
                    message.subject or message.body[:80],
                    message.body,
                    message.entity,
                    message.record_id,
                    time_param(site.db, _now()),
                ],
            )
            if row is not None:
                delivered.append(user_id)
        return {"inbox": delivered}


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


class EmailChannel(Channel):
    """Email over SMTP: ``host``, ``port``, ``sender``; optional ``username``/``password``, ``starttls``."""

    kind = "email"

    def check_config(self, name: str, config: Mapping[str, Any]) -> None:
        for key in ("host", "sender"):
            if not config.get(key):
                raise ParamProblem(key, f"channel {name!r} needs {key}")

    async def send(self, site: Site, config: Mapping[str, Any], message: Message) -> Any:
        email = EmailMessage()
        email["From"] = str(config["sender"])
        email["To"] = message.to
        email["Subject"] = message.subject
        domain = str(config["sender"]).rsplit("@", 1)[-1]
        email["Message-ID"] = f"<{message.key.replace(':', '.')}@{domain}>"
        email[IDEMPOTENCY_HEADER] = message.key
        email.set_content(message.body)

        def deliver() -> None:
            with smtplib.SMTP(
                str(config["host"]),
                int(config.get("port", 25)),
                timeout=float(config.get("timeout", 10)),
            ) as smtp:
                if config.get("starttls"):
                    smtp.starttls()
                if config.get("username"):
                    smtp.login(str(config["username"]), str(config.get("password", "")))
                smtp.send_message(email)

        try:
            await asyncio.to_thread(deliver)
        except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
            raise ActionRetry(f"SMTP server {config['host']}: {exc}") from exc
        return {"message_id": str(email["Message-ID"])}


class HttpChannel(Channel):
    """A generic HTTP channel (SMS gateways, WeCom and DingTalk robots): ``url``, ``body`` template,
    optional ``headers``, ``method``, ``sign = "dingtalk"`` with ``secret``."""

    kind = "http"

    def check_config(self, name: str, config: Mapping[str, Any]) -> None:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ParamProblem("url", f"channel {name!r} needs an http(s) url")
        reason = check_template(str(config.get("body", "")))
        if reason:
            raise ParamProblem("body", f"channel {name!r}: {reason}")

    async def send(self, site: Site, config: Mapping[str, Any], message: Message) -> Any:
        data = {
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "key": message.key,
        }
        template = config.get("body") or '{"to": {{ to|tojson }}, "text": {{ body|tojson }}}'
        body = render(str(template), data).encode()
        url = str(config["url"])
        if config.get("sign") == "dingtalk":
            stamp = str(int(time.time() * 1000))
            digest = hmac.new(
                str(config["secret"]).encode(),
                f"{stamp}\n{config['secret']}".encode(),
                hashlib.sha256,
            ).digest()
            signature = urllib.parse.quote_plus(base64.b64encode(digest))
            url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={signature}"
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.key}
        headers.update({str(k): str(v) for k, v in (config.get("headers") or {}).items()})
        status, text = await post_json(url, body, headers, str(config.get("method", "POST")))
        if status == 0 or status >= 500:
            raise ActionRetry(
                f"channel {message.channel}: {url} answered {status or 'nothing'}: {text[:200]}"
            )
        if status >= 400:
            raise RuntimeError(
                f"channel {message.channel}: {url} refused with {status}: {text[:200]}"
            )
        return {"status": status, "answer": text[:500]}


def builtin_channels() -> list[Channel]:
    """Every built-in channel kind."""
    return [InboxChannel(), EmailChannel(), HttpChannel()]
