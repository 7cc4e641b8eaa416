"""A standard Slack workspace export (`.zip` or an unpacked folder) → canonical interactions.

Layout: `users.json` (`id`, `real_name`, `profile.{real_name, display_name, email, phone}`,
`is_bot`, `deleted`), `channels.json` (`id`, `name`), and one folder per channel with one
`<YYYY-MM-DD>.json` per day: a JSON array of messages (`user`, `ts`, `thread_ts`, `subtype`,
`bot_id`, `user_profile`).

Mapping: `interaction_id` = `slack:<channel id>:<ts>`; `conversation_id` =
`slack:<channel id>:<thread_ts or ts>` (a thread is one conversation; a message outside a thread
is its own); `occurred_at` = `ts` (epoch seconds); the contact is the member: `email` and `phone`
from the profile, `name` = `real_name`, and `session_id` = `slack:<team or 'workspace'>:<user
id>` so that every message of one member joins one contact even when the profile has no email.
Deleted members are still contacts (their history is real); `file` is the channel file inside the
export (`<export>/<channel>/<date>.json`) and `row` the message's 1-based position in it.

Left out and counted: bots (`is_bot`, `bot_id`, `subtype: bot_message`, Slackbot), the
workspace's own staff (profile email on a `SourceConfig.staff_domains` domain), and system
messages (joins, leaves, topic changes). Quarantined: an export without `users.json`, a channel
file that is not a JSON array, a message without `ts`.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

import orjson

from dedup.ingest.adapters.base import (
    DEFAULT_CONFIG,
    Records,
    Rejects,
    SourceConfig,
    dumps,
    read_export_folder,
    read_zip_members,
    result,
)
from dedup.ingest.readers import FileOrigin, ReadResult, RefusedFile

# Message subtypes written by people; every other subtype is Slack talking (joins, topics, ...).
PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message"})
SLACKBOT = "USLACKBOT"
CHANNEL_LISTINGS = ("channels.json", "groups.json", "mpims.json", "dms.json")


def read_slack(path: Path, origin: FileOrigin, config: SourceConfig = DEFAULT_CONFIG) -> ReadResult:
    """Read one Slack export (a `.zip` file or a folder). Never raises on bad content."""
    records, rejects, skipped = Records(), Rejects(origin), Counter[str]()
    try:
        files = _export_files(path, origin, rejects)
    except RefusedFile as refused:  # a symlink, a FIFO, or inflating past the size cap
        rejects.add(None, refused.reason, None)
        return result(records, rejects, skipped, origin)
    except (OSError, zipfile.BadZipFile) as exc:
        rejects.add(None, f"not a readable Slack export: {exc}", None)
        return result(records, rejects, skipped, origin)
    if files is None:
        rejects.add(
            None, f"unsupported file type '{path.name}' (expected a .zip or a folder)", None
        )
        return result(records, rejects, skipped, origin)
    users_raw = files.get("users.json")
    if users_raw is None:
        rejects.add(None, "Slack export without users.json", None)
        return result(records, rejects, skipped, origin)
    try:
        users = {u["id"]: u for u in orjson.loads(users_raw) if isinstance(u, dict) and "id" in u}
    except (orjson.JSONDecodeError, TypeError) as exc:
        rejects.add_in(
            f"{origin.file}/users.json", None, f"users.json is not valid: {exc}", None, None
        )
        return result(records, rejects, skipped, origin)
    # Folder name → conversation id. Public channels are folders named by channel name; private
    # channels (groups.json) and group DMs (mpims.json) too; DMs (dms.json) by their id.
    channel_ids: dict[str, str] = {}
    for listing in CHANNEL_LISTINGS:
        try:
            for ch in orjson.loads(files.get(listing, b"[]")):
                if isinstance(ch, dict) and ch.get("id"):
                    channel_ids[ch.get("name") or ch["id"]] = ch["id"]
        except (orjson.JSONDecodeError, TypeError) as exc:
            rejects.add_in(
                f"{origin.file}/{listing}", None, f"{listing} is not valid: {exc}", None, None
            )
    for name in sorted(files):
        parts = PurePosixPath(name).parts
        if len(parts) != 2 or not parts[1].endswith(".json"):
            continue
        channel = channel_ids.get(parts[0], parts[0])
        _read_channel_day(
            files[name], f"{origin.file}/{name}", channel, users, config, records, rejects, skipped
        )
    return result(records, rejects, skipped, origin)


def _export_files(path: Path, origin: FileOrigin, rejects: Rejects) -> dict[str, bytes] | None:
    """Member name (`users.json`, `general/2026-11-01.json`) → bytes; None if not an export.

    Read through `base.read_export_folder` / `base.read_zip_members`: no symlink followed, only
    regular files, decompressed size capped. Only `users.json`, the listings and
    `<channel>/<day>.json` are read, so the walk goes two levels deep."""
    if path.is_dir():
        return read_export_folder(path, origin, rejects, ".json", max_depth=2)
    if path.suffix.lower() != ".zip":
        return None
    members = read_zip_members(path, origin, lambda n: n.endswith(".json") and "__MACOSX" not in n)
    # Exports zipped with their top folder (`acme Slack export/users.json`) are common.
    prefix = _common_folder(list(members))
    return {n[len(prefix) :]: data for n, data in members.items()}


def _common_folder(names: list[str]) -> str:
    if any("/" not in n for n in names if n.endswith("users.json")):
        return ""
    users = [n for n in names if n.endswith("/users.json")]
    return users[0][: -len("users.json")] if users else ""


def _read_channel_day(
    data: bytes,
    file: str,
    channel: str,
    users: dict[str, dict],
    config: SourceConfig,
    records: Records,
    rejects: Rejects,
    skipped: Counter[str],
) -> None:
    try:
        messages = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        rejects.add_in(file, None, f"invalid JSON: {str(exc).splitlines()[0][:200]}", data, None)
        return
    if not isinstance(messages, list):
        rejects.add_in(file, None, "channel file is not a JSON array of messages", data, None)
        return
    for position, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            rejects.add_in(file, position, "message is not an object", dumps(message), None)
            continue
        ts = message.get("ts")
        if not isinstance(ts, str) or not ts:
            rejects.add_in(file, position, "message without 'ts'", dumps(message), None)
            continue
        iid = f"slack:{channel}:{ts}"
        subtype = message.get("subtype")
        user_id = message.get("user")
        user = users.get(user_id) if isinstance(user_id, str) else None
        if (
            subtype == "bot_message"
            or message.get("bot_id")
            or user_id == SLACKBOT
            or (user is not None and (user.get("is_bot") or user.get("is_app_user")))
        ):
            skipped["bot"] += 1
            continue
        if not (subtype is None or isinstance(subtype, str)) or subtype not in PERSON_SUBTYPES:
            skipped["system_message"] += 1
            continue
        if not isinstance(user_id, str) or not user_id:
            rejects.add_in(file, position, "message without 'user'", dumps(message), iid)
            continue
        member = user or {}
        profile = member.get("profile")
        if not isinstance(profile, dict):
            profile = message.get("user_profile")
        if not isinstance(profile, dict):
            profile = {}
        email = _text(profile.get("email"))
        if config.is_staff_email(email):
            skipped["staff"] += 1
            continue
        team = _text(member.get("team_id")) or _text(message.get("team")) or "workspace"
        name = (
            _text(member.get("real_name"))
            or _text(profile.get("real_name"))
            or _text(profile.get("display_name"))
        )
        thread = message.get("thread_ts")
        thread = thread if isinstance(thread, str) and thread else ts
        records.add(
            file,
            position,
            interaction_id=iid,
            channel="slack",
            occurred_at=ts,
            conversation_id=f"slack:{channel}:{thread}",
            session_id=f"slack:{team}:{user_id}",
            email=email,
            phone=_text(profile.get("phone")),
            name=name,
        )


def _text(value: object) -> str | None:
    """A profile value as text; anything else (a number, a list, '') counts as absent."""
    return value.strip() or None if isinstance(value, str) else None
