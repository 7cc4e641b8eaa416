"""Typed engine settings. The Dagster resource and the CLI build one of these; the engine reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dedup.properties import Property

# SPEC: audience from `plan`. Keys are lower-cased plan names as `identify()` sends them.
DEFAULT_AUDIENCE_BY_PLAN: dict[str, str] = {
    "free": "public",
    "paid": "paid_users",
    "enterprise": "enterprise",
    "growth": "growth",
    "internal": "internal",
}
DEFAULT_AUDIENCE = "public"


@dataclass(frozen=True)
class HubLimits:
    """When a key is too shared to be one person's. Defaults are measured in docs/automerge.md.

    A key is ambiguous when it co-occurs with MORE than the given number of distinct values of
    the other identifier.
    """

    phone_max_identities: int = 1  # phase 2: distinct email/user-bearing components per phone
    email_max_phones: int = 3  # test@test.com is typed with many phones
    email_max_user_ids: int = 1  # two verified accounts behind one inbox are two people
    session_max_emails: int = 2  # a kiosk or a bot sees many; a person may fix a typo once
    session_max_phones: int = 2
    session_max_user_ids: int = 1  # logging out and in as someone else is not one person


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs to turn staged records into contacts.

    Args:
        identity_secrets: accepted HMAC secrets, current first. Empty means nothing is verified.
        previous_secret_until: the rotated-out secret (second of `identity_secrets`) verifies
            records that occurred up to this time; None accepts it without limit.
        after_erasure: `suppress` (an erased person's identifiers never come back) or
            `allow_new` (an interaction after the erasure starts a new contact).
        default_region: libphonenumber region for numbers written without a country code.
        hub_limits: when a shared key stops linking (see `HubLimits`).
        audience_by_plan: plan → audience tag; a plan not listed gives `default_audience`.
    """

    identity_secrets: tuple[str, ...] = ()
    previous_secret_until: datetime | None = None
    after_erasure: str = "suppress"
    properties: dict[str, Property] = field(default_factory=dict)  # typed custom properties
    default_region: str = "US"
    hub_limits: HubLimits = field(default_factory=HubLimits)
    audience_by_plan: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_AUDIENCE_BY_PLAN))
    default_audience: str = DEFAULT_AUDIENCE
