"""GET /me/invitees/ pages: newest first, each cursor naming the row it continues from."""

import re
from base64 import b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination, _positive_int

from referrals.selectors import INVITEE_MAX_PAGE_SIZE, INVITEE_ORDERING, INVITEE_PAGE_SIZE

LARGEST_ID = 2**63 - 1  # a bigint: anything larger could only be a forged cursor
CURSOR_TOKENS = {"o", "r", "p", "i"}  # DRF's offset, direction and position, and the position's row
URL_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# A moment as cursors carry it: to the second or finer, with its offset (ours "Z", DRF's "+00:00").
WRITTEN_MOMENT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class Position:
    """A row of the list: its activation moment and its user.

    `user_id` is None in cursors written before positions named the row: those compare the
    moment alone and count an offset over equal moments, as DRF's own cursor does.
    """

    moment: datetime
    user_id: int | None


class NewestFirstCursor(CursorPagination):
    """DRF's cursor pagination with a position of (activated_at, user_id) instead of activated_at.

    DRF's cursor steps over rows with the same position by an offset it stops counting at 1,000,
    so past that many equal moments its pages came round to the same rows forever. A pair that
    is unique needs no offset: every page is one index range scan from its position.
    The cursor keeps DRF's tokens (`r`, `p` and now `i`, form-encoded, in base64), and cursors
    without `i` still work. It is written in URL-safe base64 of text that parse_qs reads back as
    it is, so a link is put together without percent-encoding anything: DRF's escaping of its own
    base64 (and of the moment's text inside it) twice a page was most of what building links cost.
    """

    ordering = INVITEE_ORDERING
    page_size = INVITEE_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = INVITEE_MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self._base_parts = urlsplit(self.base_url)
        # From the QueryDict, which reads the query as UTF-8: the absolute URI's escapes stand
        # for the Latin-1 text WSGI hands over, so a parameter sent unescaped would come back garbled.
        self._other_parameters = [
            (name, value)
            for name, values in request.query_params.lists()
            if name != self.cursor_query_param
            for value in values
        ]
        self.cursor = self.decode_cursor(request)
        offset, reverse, position = self.cursor or (0, False, None)
        after = None if position is None else (position.moment, position.user_id)
        rows, ids = queryset.page(after=after, newest_first=not reverse, offset=offset, limit=self.page_size + 1)
        more = len(rows) > self.page_size
        rows, ids = rows[: self.page_size], ids[: self.page_size]
        came_from_a_position = position is not None or offset > 0
        if reverse:
            rows.reverse()
            ids.reverse()
            self.has_next, self.has_previous = came_from_a_position, more
        else:
            self.has_next, self.has_previous = more, came_from_a_position
        self.page, self._user_ids = rows, ids
        self.display_page_controls = self.has_next or self.has_previous
        return self.page

    def get_next_link(self):
        if not self.has_next:
            return None
        if not self.page:  # nothing comes before this position, so the list starts after it
            return self._link(self._other_parameters)
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=self._position_of(-1)))

    def get_previous_link(self):
        if not self.has_previous:
            return None
        if not self.page:  # nothing comes after this position: the previous page is the list's last
            return self.encode_cursor(Cursor(offset=0, reverse=True, position=None))
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=self._position_of(0)))

    def _position_of(self, index: int) -> Position:
        return Position(moment=self.page[index]["activated_at"], user_id=self._user_ids[index])

    def encode_cursor(self, cursor):
        encoded = _cursor_text(reverse=cursor.reverse, position=cursor.position)
        return self._link([*self._other_parameters, (self.cursor_query_param, encoded)])

    def _link(self, parameters: list[tuple[str, str]]) -> str:
        # As DRF's replace_query_param writes it: the parameters sorted by name.
        query = urlencode(sorted(parameters, key=lambda pair: pair[0]))
        return urlunsplit(self._base_parts._replace(query=query))

    def get_paginated_response_schema(self, schema):
        # DRF's example links are of another API (and one ends in a stray quote): these are ours.
        reply = super().get_paginated_response_schema(schema)
        example = Position(moment=datetime(2026, 1, 16, 10, tzinfo=UTC), user_id=42)
        for name, reverse in (("next", False), ("previous", True)):
            cursor = _cursor_text(reverse=reverse, position=example)
            reply["properties"][name]["example"] = f"https://api.example.com/api/v1/me/invitees/?cursor={cursor}"
        return reply

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Rows per page, 1 to {self.max_page_size}: a larger number gives {self.max_page_size}; "
                    f"zero, a negative number or text gives the default, {self.page_size}."
                )
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size, "default": self.page_size}
            else:
                parameter["description"] = "Opaque: take it from `next` or `previous` as it is."
        return parameters

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:  # `?cursor=` too: the first page, as a client filling in no cursor means it
            return None
        # DRF checks the cursor's base64, not its position: a forged one must be a 404, not a 500;
        # and it skips what is not base64 and reads a date as its midnight, so a link cut short
        # or garbled was another page (the first, or past the end) instead of "start again".
        try:
            # Either alphabet: cursors written before were standard base64, padded.
            padded = encoded.encode("ascii").translate(URL_SAFE_TO_STANDARD) + b"=" * (-len(encoded) % 4)
            decoded = b64decode(padded, validate=True).decode("ascii")
            tokens = parse_qs(decoded, keep_blank_values=True, strict_parsing=True)
            if not tokens or set(tokens) - CURSOR_TOKENS or any(len(values) > 1 for values in tokens.values()):
                raise ValueError(decoded)
            offset = _positive_int(tokens.get("o", ["0"])[0], cutoff=self.offset_cutoff)
            reverse = {"0": False, "1": True}[tokens.get("r", ["0"])[0]]
            text, user_id = tokens.get("p", [None])[0], tokens.get("i", [None])[0]
            position = None if text is None else Position(_utc_moment(text), _user_id(user_id))
            if position is None and user_id is not None:
                raise ValueError("a user without a moment")
        except (TypeError, ValueError, OverflowError, KeyError):
            raise NotFound(self.invalid_cursor_message) from None
        return Cursor(offset=offset, reverse=reverse, position=position)


def _cursor_text(*, reverse: bool, position: Position | None) -> str:
    tokens = ["r=1"] if reverse else []
    if position is not None:
        tokens += [f"p={_moment_text(position.moment)}", f"i={position.user_id}"]
    return urlsafe_b64encode("&".join(tokens).encode("ascii")).rstrip(b"=").decode("ascii")


def _moment_text(moment: datetime) -> str:
    # ISO 8601 in UTC with "Z": nothing parse_qs would read otherwise ("+00:00" would read as " 00:00").
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def _utc_moment(text: str) -> datetime:
    # A moment, not the cursor's text, goes to the database: PostgreSQL reads fewer forms than
    # Python (offsets past 15:59). Near year 1 or 9999 an offset overflows.
    if not WRITTEN_MOMENT.fullmatch(text):
        raise ValueError(text)
    return datetime.fromisoformat(text).astimezone(UTC)


def _user_id(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):  # int() also reads "+7", " 7" and "0_7"
        raise ValueError(text)
    user_id = int(text)
    if not 0 < user_id <= LARGEST_ID:
        raise ValueError(text)
    return user_id
