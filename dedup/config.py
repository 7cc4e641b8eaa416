"""Typed engine settings. The Dagster resource and the CLI build one of these; the engine reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dedup.automerge import HubLimits
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
class EngineConfig:
    """Everything the engine needs to turn staged records into contacts.

    Args:
        identity_secrets: accepted HMAC secrets, current first. Empty means nothing is verified.
        previous_secret_until: the rotated-out secret (second of `identity_secrets`) verifies
            records that occurred up to this time; None accepts it without limit.
        after_erasure: `suppress` (an erased person's identifiers never come back) or
            `allow_new` (an interaction after the erasure starts a new contact).
        default_region: libphonenumber region for numbers written without a country code.
        hub_limits: when a shared key stops linking (see `automerge.HubLimits`).
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
