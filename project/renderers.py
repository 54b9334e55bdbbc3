"""The API's JSON renderer: DRF's JSONRenderer, writing through orjson.

An invitee page spent about 0.12 ms of its 0.8 ms in the standard library's encoder, most of
it calling back into Python for each row's datetime (docs/benchmarks.md); orjson writes
datetimes itself. The bytes are DRF's for every reply this API sends (tests compare them):
UTC as "Z", compact, UTF-8, U+2028/U+2029 escaped. Types orjson does not write itself (lazy
translations, Decimal, ...) go through DRF's own encoder; what orjson refuses (integers past
64 bits, keys that are not strings, dataclasses, aware times, objects DRF cannot encode either)
is rendered again by DRF, which raises where it would have raised. JSON that a reply carries as it
is (orjson.Fragment: the profile's invitees, kept as JSON by PostgreSQL) is written as it is by
orjson and read back by this module's encoder for DRF's path.

Differences, in values no reply carries: small floats are spelled otherwise (0.00001 for
1e-05); NaN and infinity are written as null where DRF's strict JSON refuses them; Enum members
are written as their values where DRF refuses them; UTC offsets that are not whole minutes are
cut to minutes (PostgreSQL's timestamps arrive in UTC); an OrderedDict reordered with
move_to_end() is written in insertion order; and a generator that orjson has begun before a
refusal is rendered again empty.
"""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import encoders

# Dataclasses pass to DRF's encoder, which refuses them: a view that forgets its serializer fails
# as it does with DRF, instead of sending every field of a selector's result.
OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS
LINE_SEPARATOR, PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


class JSONEncoder(encoders.JSONEncoder):
    """DRF's encoder, which also writes JSON that a reply carries as it is (orjson.Fragment)."""

    def default(self, obj):
        if isinstance(obj, orjson.Fragment):
            return orjson.loads(orjson.dumps(obj))  # a fragment keeps its text to itself
        return super().default(obj)


class FastJSONRenderer(JSONRenderer):
    encoder_class = JSONEncoder

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None or not self._drf_defaults():
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, default=_encoder.default, option=OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if LINE_SEPARATOR in rendered or PARAGRAPH_SEPARATOR in rendered:
            # As DRF does: valid JSON, but they end a line in JavaScript.
            rendered = rendered.replace(LINE_SEPARATOR, b"\\u2028").replace(PARAGRAPH_SEPARATOR, b"\\u2029")
        return rendered

    def _drf_defaults(self) -> bool:
        # What orjson writes: DRF's encoder (as above), UNICODE_JSON, COMPACT_JSON and STRICT_JSON as they ship.
        return self.encoder_class is JSONEncoder and not self.ensure_ascii and self.compact and self.strict


_encoder = JSONEncoder()
