"""Reads of the referrals app; each owns its query shape."""

from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.exceptions import AccountDisabled
from accounts.phone_numbers import mask_phone
from project.prepared_statements import fetch_prepared, fetch_unprepared
from referrals.exceptions import InviteCodeUnknown
from referrals.invite_codes import looks_like_invite_code, normalize_invite_code
from referrals.models import Referral
from referrals.services import give_missing_invite_code

PROFILE_INVITEES = 100
# GET /me/invitees/: newest first, pages of 50 by default and of 100 at most.
INVITEE_ORDERING = ("-activated_at", "-user_id")
INVITEE_PAGE_SIZE, INVITEE_MAX_PAGE_SIZE = 50, 100


@dataclass(frozen=True)
class Profile:
    id: int
    phone: str
    first_name: str
    last_name: str
    date_joined: datetime
    is_active: bool
    invite_code: str
    invite_url: str | None
    activated_invite_code: str | None
    invited_by: str | None
    activated_at: datetime | None
    # On PostgreSQL the list as JSON, which the renderer writes as it is; a serializer cannot read it.
    invitees: list[str] | orjson.Fragment
    invitees_count: int


# The hottest read of the service, so one round trip and no ORM compilation: the user, the
# inviter and the 100 newest invitees' phones, which the database keeps for each inviter as the
# reply's JSON (migrations referrals/0005 and 0006: reading them through the invitees took 100
# lookups, and as an array, a parse and a write again). A prepared statement: planning it took
# longer than running it. to_json() leaves the kept JSON as it is, and writes 0005's arrays the same
# way: a release that runs before its migration still sends valid JSON.
PROFILE_SQL = """
SELECT u.id, u.phone, u.first_name, u.last_name, u.date_joined, u.is_active, r.invite_code,
       (SELECT ir.invite_code FROM referrals_referral ir WHERE ir.user_id = r.invited_by_id),
       (SELECT iu.phone FROM accounts_user iu WHERE iu.id = r.invited_by_id),
       r.activated_at, r.invitees_count,
       coalesce((SELECT to_json(ri.phones)::text FROM referrals_recent_invitees ri
                 WHERE ri.inviter_id = r.user_id), '[]')
FROM referrals_referral r
JOIN accounts_user u ON u.id = r.user_id
WHERE r.user_id = $1
"""


def get_profile(*, user_id: int) -> Profile:
    """The profile of an active user: 1 query on PostgreSQL, 2 elsewhere, for any number of invitees."""
    profile = _read_profile(user_id)
    if not profile.is_active:
        raise AccountDisabled()
    return profile


def get_profile_reply(*, user_id: int) -> dict:
    """The profile as the API's JSON object: what ProfileSerializer describes, built without it.

    The profile is the hottest reply of the service and DRF's serializer costs more than the
    query; tests/test_referrals.py checks that both give the same object.
    """
    reply = dict(vars(get_profile(user_id=user_id)))  # shallow: asdict() would copy every phone
    del reply["is_active"]
    return reply


def _read_profile(user_id: int) -> Profile:
    row = _profile_row(user_id)
    if row is None and give_missing_invite_code(user_id=user_id):
        row = _profile_row(user_id)
    if row is None:
        raise InvalidToken(_("User not found"))
    (id_, phone, first_name, last_name, date_joined, is_active, code, inviter_code, inviter_phone,
     activated_at, invitees_count, invitees) = row  # fmt: skip
    return Profile(
        id=id_,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        date_joined=date_joined,
        is_active=is_active,
        invite_code=code,
        invite_url=invite_url(code),
        activated_invite_code=inviter_code,
        invited_by=inviter_phone,
        activated_at=activated_at,
        invitees=invitees,
        invitees_count=invitees_count,
    )


def _profile_row(user_id: int) -> tuple | None:
    return _profile_row_postgresql(user_id) if connection.vendor == "postgresql" else _profile_row_orm(user_id)


def _profile_row_postgresql(user_id: int) -> tuple | None:
    row = fetch_prepared("referrals_profile", PROFILE_SQL, [user_id], many=False)
    return None if row is None else (*row[:-1], orjson.Fragment(row[-1]))


def _profile_row_orm(user_id: int) -> tuple | None:
    """PROFILE_SQL's row, in two ORM queries (SQLite and other databases without ARRAY)."""
    referral = Referral.objects.select_related("user", "invited_by__user").filter(user_id=user_id).first()
    if referral is None:
        return None
    user, inviter = referral.user, referral.invited_by
    newest = newest_invitees(inviter_id=user_id).values_list("user__phone", flat=True)[:PROFILE_INVITEES]
    return (
        user.pk, user.phone, user.first_name, user.last_name, user.date_joined, user.is_active,
        referral.invite_code, inviter.invite_code if inviter else None, inviter.user.phone if inviter else None,
        referral.activated_at, referral.invitees_count, list(newest),
    )  # fmt: skip


def newest_invitees(*, inviter_id: int) -> QuerySet[Referral]:
    """Invitees of one user, newest first: an index range scan on referral_invitees_newest."""
    return Referral.objects.filter(invited_by_id=inviter_id).order_by(*INVITEE_ORDERING)


def invitee_rows(*, inviter_id: int) -> "InviteePages":
    """Invitees in the shape of GET /me/invitees/ rows, newest first, for NewestFirstCursor to page."""
    return InviteePages(inviter_id)


# One keyset page on referral_invitees_newest (either direction): the rows after a position, the
# same rows and order the ORM query gives, without building and compiling it for every page
# (docs/benchmarks.md). A position is (activated_at, user_id), compared as a pair, so any number
# of invitees may share a moment; a position with no user (a cursor from before) compares the
# moment alone and steps over equal ones by an offset, as DRF's cursor did.
INVITEE_PAGE_SQL = """
SELECT r.activated_at, u.phone, u.first_name, u.last_name, r.user_id
FROM referrals_referral r JOIN accounts_user u ON u.id = r.user_id
WHERE r.invited_by_id = $1{position}
ORDER BY r.activated_at {direction}, r.user_id {direction}
OFFSET {offset} LIMIT {limit}
"""
# Sizes that run as prepared statements: the default page and the largest, each with the one extra
# row the paginator reads to know whether a next page exists. The limit is written into the
# statement so PostgreSQL keeps one generic plan; other sizes, and offsets (only positions from
# before need them), are planned each time instead of piling up plans.
PREPARED_INVITEE_PAGE_LIMITS = (INVITEE_PAGE_SIZE + 1, INVITEE_MAX_PAGE_SIZE + 1)


@dataclass(frozen=True)
class InviteePages:
    """One user's invitees, a page at a time."""

    inviter_id: int

    def page(
        self, *, after: tuple[datetime, int | None] | None, newest_first: bool, offset: int, limit: int
    ) -> tuple[list[dict], list[int]]:
        """Up to `limit` rows past `after` in the given direction, skipping `offset`; and their user ids.

        `after` is an aware moment and the user at it, or None for the start of the list.
        """
        if connection.vendor != "postgresql":
            rows = self._orm_page(after=after, newest_first=newest_first, offset=offset, limit=limit)
        else:
            rows = self._sql_page(after=after, newest_first=newest_first, offset=offset, limit=limit)
        # Keys in the order the ORM's values() gives them; a literal is 4x faster than dict(zip()) here.
        return (
            [
                {"activated_at": activated_at, "phone": phone, "first_name": first_name, "last_name": last_name}
                for activated_at, phone, first_name, last_name, _user_id in rows
            ],
            [row[4] for row in rows],
        )

    def _sql_page(self, *, after, newest_first, offset, limit) -> list[tuple]:
        params: list = [self.inviter_id]
        comparison = "<" if newest_first else ">"
        position, kind = "", "all"
        if after is not None and after[1] is not None:
            position, kind = f" AND (r.activated_at, r.user_id) {comparison} ($2, $3)", "row"
            params += after
        elif after is not None:
            position, kind = f" AND r.activated_at {comparison} $2", "moment"
            params.append(after[0])
        direction = "DESC" if newest_first else "ASC"
        sql = INVITEE_PAGE_SQL.format(position=position, direction=direction, offset=offset, limit=limit)
        if offset == 0 and limit in PREPARED_INVITEE_PAGE_LIMITS:
            return fetch_prepared(f"referrals_invitees_{direction.lower()}_{kind}_{limit}", sql, params, many=True)
        return fetch_unprepared(sql, params)

    def _orm_page(self, *, after, newest_first, offset, limit) -> list[tuple]:
        rows = newest_invitees(inviter_id=self.inviter_id)
        if not newest_first:
            rows = rows.reverse()
        if after is not None:
            moment, user_id = after
            before = "lt" if newest_first else "gt"
            past = Q(**{f"activated_at__{before}": moment})
            if user_id is not None:
                past |= Q(activated_at=moment, **{f"user_id__{before}": user_id})
            rows = rows.filter(past)
        columns = ("activated_at", "user__phone", "user__first_name", "user__last_name", "user_id")
        return list(rows.values_list(*columns)[offset : offset + limit])


def invite_url(code: str) -> str | None:
    template = settings.INVITE_URL_TEMPLATE
    return template.format(code=code) if template else None


@dataclass(frozen=True)
class InvitePreview:
    invite_code: str
    inviter: str


# Hand-written and prepared: the ORM spent longer building this join than PostgreSQL running it.
INVITE_CODE_OWNER_SQL = """
SELECT u.phone FROM referrals_referral r JOIN accounts_user u ON u.id = r.user_id WHERE r.invite_code = $1
"""


def get_invite_preview(*, code: str) -> InvitePreview:
    """What a stranger may learn from a code: that it exists, and a masked phone."""
    code = normalize_invite_code(code)
    owner = None
    if looks_like_invite_code(code):
        owner = fetch_prepared("referrals_invite_code_owner", INVITE_CODE_OWNER_SQL, [code], many=False)
    if owner is None:
        raise InviteCodeUnknown()
    return InvitePreview(invite_code=code, inviter=mask_phone(owner[0]))


# The invite tree, for the admin: everyone below a user, and the chain above them.

INVITE_TREE_LIMIT = 1000
INVITE_CHAIN_LIMIT = 100
# The service keeps the graph a forest; this bound only stops a corrupted cycle from recursing forever.
INVITE_TREE_MAX_DEPTH = 1_000_000


@dataclass(frozen=True)
class TreeMember:
    user_id: int
    phone: str
    first_name: str
    last_name: str
    invite_code: str
    invited_by_id: int | None
    activated_at: datetime | None
    invitees_count: int
    depth: int  # levels below (tree) or above (chain) the user the page is about


@dataclass(frozen=True)
class InviteTree:
    members: list[TreeMember]  # nearest levels first, `limit` at most, arranged depth-first
    total: int  # everyone in the tree, shown or not

    @property
    def not_shown(self) -> int:
        return self.total - len(self.members)


# Seeded with the user's own row (depth 0), not with their invitees: PostgreSQL plans the
# recursive step from the seed's row estimate, and one row gets an index nested loop on
# invited_by, while 90k direct invitees got a merge join that scanned the whole table on
# every level (minutes for a long chain instead of milliseconds).
# Breadth-first (by depth) so that a cut at LIMIT keeps every shown member's inviter shown;
# count(*) OVER () is the size of the whole tree, taken before the LIMIT, in the same query,
# and only the shown rows are joined to their users (100k members: about 0.3 s in all).
INVITE_TREE_QUERY = """
WITH RECURSIVE tree (user_id, invited_by_id, depth) AS (
    SELECT user_id, invited_by_id, 0 FROM referrals_referral WHERE user_id = %s
    UNION ALL
    SELECT r.user_id, r.invited_by_id, t.depth + 1
    FROM referrals_referral r JOIN tree t ON r.invited_by_id = t.user_id
    WHERE t.depth < %s
), shown AS (
    SELECT user_id, invited_by_id, depth, count(*) OVER () AS total
    FROM tree WHERE depth > 0
    ORDER BY depth, invited_by_id, user_id
    LIMIT %s
)
SELECT r.user_id, r.invite_code, r.invited_by_id, r.activated_at, r.invitees_count,
       s.depth, u.phone, u.first_name, u.last_name, s.total
FROM shown s
JOIN referrals_referral r ON r.user_id = s.user_id
JOIN accounts_user u ON u.id = s.user_id
ORDER BY s.depth, s.invited_by_id, s.user_id
"""

INVITE_CHAIN_QUERY = """
WITH RECURSIVE chain (user_id, depth) AS (
    SELECT invited_by_id, 1 FROM referrals_referral WHERE user_id = %s AND invited_by_id IS NOT NULL
    UNION ALL
    SELECT r.invited_by_id, c.depth + 1
    FROM referrals_referral r JOIN chain c ON r.user_id = c.user_id
    WHERE r.invited_by_id IS NOT NULL AND c.depth < %s
)
SELECT r.user_id, r.invite_code, r.invited_by_id, r.activated_at, r.invitees_count,
       c.depth, u.phone, u.first_name, u.last_name
FROM chain c
JOIN referrals_referral r ON r.user_id = c.user_id
JOIN accounts_user u ON u.id = c.user_id
ORDER BY c.depth DESC
"""


def _tree_member(row: Referral) -> TreeMember:
    return TreeMember(
        user_id=row.user_id,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        invite_code=row.invite_code,
        invited_by_id=row.invited_by_id,
        activated_at=row.activated_at,
        invitees_count=row.invitees_count,
        depth=row.depth,
    )


def get_invite_tree(*, user_id: int, limit: int = INVITE_TREE_LIMIT) -> InviteTree:
    """The user's invitees, theirs, and so on: one recursive query, at most `limit` of them."""
    # Referral.objects.raw() rather than a cursor: it converts activated_at on every backend.
    rows = list(Referral.objects.raw(INVITE_TREE_QUERY, [user_id, INVITE_TREE_MAX_DEPTH, limit]))
    total = rows[0].total if rows else 0
    children: dict[int, list[TreeMember]] = {}
    for row in rows:
        children.setdefault(row.invited_by_id, []).append(_tree_member(row))
    # Depth-first for reading: each member right under their inviter.
    members, stack = [], list(reversed(children.get(user_id, [])))
    while stack:
        member = stack.pop()
        members.append(member)
        stack.extend(reversed(children.get(member.user_id, [])))
    return InviteTree(members=members, total=total)


def get_invite_chain(*, user_id: int, limit: int = INVITE_CHAIN_LIMIT) -> list[TreeMember]:
    """Who invited the user, who invited them, ... root first: one recursive query, `limit` levels at most."""
    return [_tree_member(row) for row in Referral.objects.raw(INVITE_CHAIN_QUERY, [user_id, limit])]
