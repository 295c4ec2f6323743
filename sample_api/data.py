"""Deterministic seed data.

Every value is derived from record ids, so two runs always serve the same records.
Gateway tests rely on these exact values, for example on which operator is the
assignee of a given chat, so change a rule here only together with those tests.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

Record = dict[str, Any]
Table = dict[int, Record]

OPERATORS = ("u-op-1", "u-op-2", "u-op-3")
USERS = frozenset({*OPERATORS, "u-owner", "u-admin", "u-manager"})

CHAT_COUNT = 300
CONTACT_COUNT = 100
LIST_COUNT = 5
MESSAGES_PER_CHAT = 3
CHAT_STATUSES = ("open", "pending", "closed")

SEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

FIRST_NAMES = (
    "Anna", "Marco", "Giulia", "Luca", "Sara",
    "Paolo", "Elena", "Davide", "Chiara", "Matteo",
)  # fmt: skip
LAST_NAMES = (
    "Rossi", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Bruno", "Gallo", "Conti",
)  # fmt: skip
TAGS = (
    ("vip", "#d4af37"),
    ("new", "#2e86de"),
    ("returning", "#10ac84"),
    ("wholesale", "#8e44ad"),
    ("complaint", "#e74c3c"),
    ("newsletter", "#f39c12"),
    ("italy", "#27ae60"),
    ("abroad", "#34495e"),
)
LIST_NAMES = ("Newsletter", "VIP customers", "Black Friday", "Wholesale", "Inactive")
SEEDED_MESSAGES = (
    ("in", "Hello, I have a question about order #{order}."),
    ("out", "Hi {first_name}, sure: what would you like to know?"),
    ("in", "When will order #{order} be shipped?"),
)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with a trailing ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_seed() -> dict[str, Any]:
    """Build a fresh copy of every table and singleton the API serves."""
    contacts = build_contacts()
    chats = build_chats()

    return {
        "chats": chats,
        "messages": build_messages(chats, contacts),
        "contacts": contacts,
        "tags": build_tags(),
        "lists": build_lists(),
        "templates": build_templates(),
        "campaigns": build_campaigns(),
        "automations": build_automations(),
        "webhooks": build_webhooks(),
        "account": {"id": "acc-1", "name": "Demo Shop", "plan": "pro"},
        "billing": build_billing(),
    }


def chat_assignee(chat_id: int) -> str | None:
    """Return the seeded assignee: u-op-1, u-op-2, u-op-3, then nobody, in turn."""
    return (*OPERATORS, None)[(chat_id - 1) % 4]


def chat_contact_id(chat_id: int) -> int:
    """Return the seeded contact id: contact n has chats n, n+100 and n+200."""
    return ((chat_id - 1) % CONTACT_COUNT) + 1


def chat_status(chat_id: int) -> str:
    """Return the seeded status, which changes every four chat ids."""
    return ("open", "open", "pending", "closed")[(chat_id // 4) % 4]


def build_chats() -> Table:
    chats: Table = {}
    for chat_id in range(1, CHAT_COUNT + 1):
        contact_id = chat_contact_id(chat_id)
        chats[chat_id] = {
            "id": chat_id,
            "contact_id": contact_id,
            "assignee": chat_assignee(chat_id),
            "status": chat_status(chat_id),
            "title": f"Chat {chat_id} with Contact {contact_id}",
            "last_message": None,
            "created_at": format_timestamp(SEED_EPOCH + timedelta(hours=chat_id)),
        }

    return chats


def build_messages(chats: Table, contacts: Table) -> Table:
    """Build three messages per chat and set each chat's ``last_message`` text.

    Message ids are global: chat n owns ids 3n-2, 3n-1 and 3n. Outgoing messages
    are sent by the chat's assignee, or by nobody (null) in an unassigned chat.
    """
    messages: Table = {}
    message_id = 0
    for chat in chats.values():
        started_at = SEED_EPOCH + timedelta(hours=chat["id"])
        first_name = contacts[chat["contact_id"]]["first_name"]
        for offset, (direction, pattern) in enumerate(SEEDED_MESSAGES, start=1):
            message_id += 1
            text = pattern.format(order=1000 + chat["id"], first_name=first_name)
            messages[message_id] = {
                "id": message_id,
                "chat_id": chat["id"],
                "direction": direction,
                "text": text,
                "created_at": format_timestamp(started_at + timedelta(minutes=offset)),
                "sent_by": chat["assignee"] if direction == "out" else None,
            }
            chat["last_message"] = text

    return messages


def contact_operators(contact_id: int) -> list[str]:
    """Return the seeded operators of a contact.

    Each contact belongs to one operator in turn. Ids divisible by 10 also get the
    next operator in the cycle, and ids divisible by 25 belong to nobody, which
    takes precedence (contacts 50 and 100 have none).
    """
    if contact_id % 25 == 0:
        return []

    first = (contact_id - 1) % len(OPERATORS)
    operators = [OPERATORS[first]]
    if contact_id % 10 == 0:
        operators.append(OPERATORS[(first + 1) % len(OPERATORS)])

    return operators


def contact_tags(contact_id: int) -> list[int]:
    """Return one or two seeded tag ids, ascending."""
    return sorted({(contact_id % len(TAGS)) + 1, (contact_id % 5) + 1})


def build_contacts() -> Table:
    contacts: Table = {}
    for contact_id in range(1, CONTACT_COUNT + 1):
        first_name = FIRST_NAMES[(contact_id - 1) % len(FIRST_NAMES)]
        last_name = LAST_NAMES[(contact_id - 1) // len(FIRST_NAMES)]
        contacts[contact_id] = {
            "id": contact_id,
            "first_name": first_name,
            "last_name": last_name,
            "phone": f"+39333000{contact_id:04d}",
            "email": f"{first_name}.{last_name}{contact_id}@example.com".lower(),
            "operators": contact_operators(contact_id),
            "tags": contact_tags(contact_id),
        }

    return contacts


def build_tags() -> Table:
    return {
        tag_id: {"id": tag_id, "name": name, "color": color}
        for tag_id, (name, color) in enumerate(TAGS, start=1)
    }


def build_lists() -> Table:
    """Build the contact lists: list n contains the contacts whose id % 5 == n % 5."""
    lists: Table = {}
    for list_id, name in enumerate(LIST_NAMES, start=1):
        members = [
            contact_id
            for contact_id in range(1, CONTACT_COUNT + 1)
            if contact_id % LIST_COUNT == list_id % LIST_COUNT
        ]
        lists[list_id] = {"id": list_id, "name": name, "contact_ids": members}

    return lists


def build_templates() -> Table:
    rows = [
        ("Order shipped", "en", "Your order {{1}} has been shipped."),
        ("Welcome", "en", "Welcome to Demo Shop, {{1}}!"),
        ("Promemoria", "it", "Ciao {{1}}, il tuo carrello ti aspetta."),
    ]
    templates: Table = {}
    for template_id, (name, language, body) in enumerate(rows, start=1):
        templates[template_id] = {
            "id": template_id,
            "name": name,
            "language": language,
            "body": body,
        }

    return templates


def build_campaigns() -> Table:
    return {
        1: {"id": 1, "name": "Spring sale", "template_id": 2, "status": "sent"},
        2: {"id": 2, "name": "Cart reminder", "template_id": 3, "status": "draft"},
    }


def build_automations() -> Table:
    return {
        1: {
            "id": 1,
            "name": "Welcome message",
            "trigger": "contact_created",
            "enabled": True,
        },
        2: {
            "id": 2,
            "name": "Out of office",
            "trigger": "message_received",
            "enabled": False,
        },
    }


def build_webhooks() -> Table:
    # example.com is reserved for documentation, so these URLs never reach anyone.
    return {
        1: {
            "id": 1,
            "name": "Order sync",
            "url": "https://example.com/hooks/orders",
            "events": ["message.received"],
        },
        2: {
            "id": 2,
            "name": "CRM export",
            "url": "https://example.com/hooks/crm",
            "events": ["contact.created", "contact.updated"],
        },
    }


def build_billing() -> dict[str, Any]:
    return {
        "plan": "pro",
        "balance_eur": 120.5,
        "invoices": [
            {"id": "inv-2024-01", "amount_eur": 49.0, "issued_at": "2024-01-31"},
            {"id": "inv-2024-02", "amount_eur": 49.0, "issued_at": "2024-02-29"},
        ],
    }
