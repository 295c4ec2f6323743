"""Tags, templates, campaigns, automations and webhooks: plain record collections."""

from collections.abc import Mapping
from typing import Any

from .errors import bad_request
from .resources import Resource
from .schema import Field
from .store import Store

ID_FIELD = Field(int, read_only=True)
NAME_FIELD = Field(str, required=True)
CAMPAIGN_STATUSES = ("draft", "scheduled", "sent")


def remove_tag_from_contacts(store: Store, tag_id: int) -> None:
    for contact in store.table("contacts").values():
        if tag_id in contact["tags"]:
            contact["tags"].remove(tag_id)


def check_campaign_template(
    store: Store,
    values: Mapping[str, Any],
    record_id: int | None,
) -> None:
    template_id = values.get("template_id")
    if template_id is not None and store.find("templates", template_id) is None:
        raise bad_request(f"Template {template_id} does not exist.")


TAGS = Resource(
    table="tags",
    fields={
        "id": ID_FIELD,
        "name": NAME_FIELD,
        "color": Field(str, default="#95a5a6"),
    },
    on_delete=remove_tag_from_contacts,
)

TEMPLATES = Resource(
    table="templates",
    fields={
        "id": ID_FIELD,
        "name": NAME_FIELD,
        "language": Field(str, default="en"),
        "body": Field(str, allow_blank=True, default=""),
    },
)

CAMPAIGNS = Resource(
    table="campaigns",
    fields={
        "id": ID_FIELD,
        "name": NAME_FIELD,
        "template_id": Field(int, nullable=True),
        "status": Field(str, choices=CAMPAIGN_STATUSES, default="draft"),
    },
    validate=check_campaign_template,
)

AUTOMATIONS = Resource(
    table="automations",
    fields={
        "id": ID_FIELD,
        "name": NAME_FIELD,
        "trigger": Field(str, default="message_received"),
        "enabled": Field(bool, default=False),
    },
)

WEBHOOKS = Resource(
    table="webhooks",
    fields={
        "id": ID_FIELD,
        "name": NAME_FIELD,
        "url": Field(str, required=True),
        "events": Field(list, item_type=str, default=[]),
    },
)

CATALOG_RESOURCES = (TAGS, TEMPLATES, CAMPAIGNS, AUTOMATIONS, WEBHOOKS)
