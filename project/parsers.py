from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with deeply nested bodies ("[[[[...") refused as a parse error.

    They fit well under the body-size limit, and `json.load` answers them with a
    RecursionError that DRF does not catch (a 500).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError() from exc
