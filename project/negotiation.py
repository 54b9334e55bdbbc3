from rest_framework.negotiation import DefaultContentNegotiation


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """The API answers JSON whatever `Accept` says (RFC 9110 lets a server disregard it).

    With one renderer there is nothing to choose, and parsing the header cost about a tenth
    of a profile request. Views with several renderers (the schema: YAML or JSON) still
    negotiate; request bodies are still matched against `Content-Type` (415 otherwise).
    """

    def select_parser(self, request, parsers):
        # A pattern (`*/*`, `application/*`) names no format; DRF would read it as its first parser's.
        if "*" in request.content_type.split(";", 1)[0]:
            return None
        return super().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
