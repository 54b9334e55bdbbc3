import pytest

RUSSIAN_HINT = "Не найдено. Пути API заканчиваются косой чертой: /api/v1/me/"  # noqa: RUF001 - Russian
RUSSIAN_NOT_FOUND = "Не найдено."  # noqa: RUF001 - Russian


@pytest.mark.parametrize(
    ("language", "detail"),
    [("en", "Not found. API paths end with a slash: /api/v1/me/"), ("ru", RUSSIAN_HINT)],
)
def test_an_api_path_without_its_slash_is_told_the_path_with_it(api, language, detail):
    response = api.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE=language)

    assert (response.status_code, response.json()) == (404, {"code": "not_found", "detail": detail})


@pytest.mark.parametrize(("language", "detail"), [("en", "Not found."), ("ru", RUSSIAN_NOT_FOUND)])
def test_an_unknown_api_path_is_not_told_a_path_that_does_not_exist_either(api, language, detail):
    # /api/v1/nope/ is a 404 too: sending the client there would only cost it another round trip.
    response = api.get("/api/v1/nope", HTTP_ACCEPT_LANGUAGE=language)

    assert (response.status_code, response.json()) == (404, {"code": "not_found", "detail": detail})
