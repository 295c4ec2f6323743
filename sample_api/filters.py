"""Query filters of the chat and contact list endpoints.

An empty filter value counts as absent, as in django-filter, so ``?status=``
returns every chat.
"""

from collections.abc import Iterable

from multidict import MultiDict, MultiMapping

from aiohttp import web

from .data import Record, Table
from .store import get_store

# The query value of ``assignee`` that selects chats with no assignee.
UNASSIGNED = "null"


def filter_params(request: web.Request) -> MultiMapping[str]:
    """Return the query parameters a list endpoint filters by.

    In the ``ignore_filters`` fault mode this is empty, so every filter is ignored
    and the endpoint returns records the client did not ask for.
    """
    if get_store(request).ignore_filters:
        return MultiDict()

    return request.query


def contact_full_name(contact: Record) -> str:
    return f"{contact['first_name']} {contact['last_name']}".strip()


def chat_matches_search(chat: Record, needle: str, contacts: Table) -> bool:
    if needle in chat["title"].casefold():
        return True

    # A chat keeps its contact id after the contact is deleted.
    contact = contacts.get(chat["contact_id"])

    return contact is not None and needle in contact_full_name(contact).casefold()


def filter_chats(
    chats: Iterable[Record],
    params: MultiMapping[str],
    contacts: Table,
) -> list[Record]:
    """Apply the ``assignee``, ``status`` and ``search`` filters.

    ``assignee`` matches a user id exactly, and the value ``null`` selects
    unassigned chats; repeated, it selects chats matching any of its values.
    ``search`` is a case-insensitive substring of the title or of the
    contact's full name.
    """
    selected = list(chats)

    assignees = [value for value in params.getall("assignee", []) if value]
    if assignees:
        wanted = {None if value == UNASSIGNED else value for value in assignees}
        selected = [chat for chat in selected if chat["assignee"] in wanted]

    status = params.get("status")
    if status:
        selected = [chat for chat in selected if chat["status"] == status]

    search = params.get("search")
    if search:
        needle = search.casefold()
        selected = [
            chat for chat in selected if chat_matches_search(chat, needle, contacts)
        ]

    return selected


def contact_matches_search(contact: Record, needle: str) -> bool:
    haystacks = (contact_full_name(contact), contact["email"], contact["phone"])

    return any(needle in haystack.casefold() for haystack in haystacks)


def filter_contacts(
    contacts: Iterable[Record],
    params: MultiMapping[str],
) -> list[Record]:
    """Apply the ``operator``, ``search`` and ``phone`` filters.

    ``operator`` keeps contacts whose operators include that user id. ``search`` is
    a case-insensitive substring of the full name, email or phone, and ``phone``
    matches exactly.
    """
    selected = list(contacts)

    operator = params.get("operator")
    if operator:
        selected = [
            contact for contact in selected if operator in contact["operators"]
        ]

    search = params.get("search")
    if search:
        needle = search.casefold()
        selected = [
            contact for contact in selected if contact_matches_search(contact, needle)
        ]

    phone = params.get("phone")
    if phone:
        selected = [contact for contact in selected if contact["phone"] == phone]

    return selected
