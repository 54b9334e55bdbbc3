"""SMS providers behind the sms_backends interface: SMS Aero (its smsaero-api package) and MTS Exolve (HTTP API).

Every failure, whatever its cause, becomes SmsDeliveryError with a reason an operator can act on. Neither the
log nor the reason ever carries the message text (it holds the code) or the full phone number.
"""

import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import phonenumbers
import requests
from django.conf import settings
from email_validator import EmailNotValidError, validate_email
from smsaero import SmsAero, SmsAeroConnectionException, SmsAeroException, SmsAeroNoMoneyException

from accounts.phone_numbers import mask_phone
from accounts.sms_backends import BaseBackend, SmsDeliveryError

logger = logging.getLogger(__name__)

# A provider's answer to a send is a few hundred bytes. Read whole, a gateway answering 2xx with 400 MiB
# took a worker from 102 MiB to 1.5 GiB; past this, the answer is a failure and the rest is not read.
PROVIDER_ANSWER_MAX_BYTES = 64 * 1024
# Providers' ids are a few dozen characters; the log line of an accepted message keeps at most this many.
LOGGED_MESSAGE_ID_MAX_CHARS = 100


LONG_DIGIT_RUN = re.compile(r"\d{7,}")
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _loggable(reason: str) -> str:
    """A provider's own words, which may name the number ("Номер 79110000104 в стоп-листе", "+7 (911)
    000-01-04"): the log keeps phones masked, as phonenumbers finds them and any run of 7 digits."""
    found = phonenumbers.PhoneNumberMatcher(reason, settings.PHONE_REGION, leniency=phonenumbers.Leniency.POSSIBLE)
    for match in reversed(list(found)):
        reason = f"{reason[: match.start]}***{reason[match.end :]}"
    return _escaped(LONG_DIGIT_RUN.sub("***", reason))


def _escaped(text: str) -> str:
    """`text` with its control characters escaped: a line break would start a line of its own in a plain-text log."""
    return CONTROL_CHARACTER.sub(lambda character: character[0].encode("unicode_escape").decode("ascii"), text)


def _fail(provider: str, phone: str, reason: str) -> SmsDeliveryError:
    reason = _loggable(reason)
    logger.warning("SMS to %s not sent by %s: %s", mask_phone(phone), provider, reason)
    return SmsDeliveryError(f"{provider}: {reason}")


def _within_sms_timeout(provider: str, phone: str, call: Callable[[], str]) -> str:
    """call()'s message id, or SmsDeliveryError once SMS_TIMEOUT has passed, however the time went.

    requests bounds the connection and each read, not the whole: an answer trickled a byte at a
    time, or a slow DNS lookup, could hold the request (and its worker) far longer. So the call runs
    in a thread of its own; one left behind still ends by the per-read timeout once the provider
    goes quiet.
    """
    outcome: dict = {}
    overdue = threading.Event()

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed over to the waiting request, which maps it
            outcome["error"] = exc
        else:
            if overdue.is_set():
                logger.warning(
                    "SMS to %s accepted by %s after the client was told it failed", mask_phone(phone), provider
                )

    worker = threading.Thread(target=run, name="sms-send", daemon=True)
    worker.start()
    worker.join(settings.SMS_TIMEOUT)
    if worker.is_alive():
        overdue.set()
        raise _fail(provider, phone, f"no answer within {settings.SMS_TIMEOUT} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _AnswerTooLong(Exception):
    """The provider's answer went past PROVIDER_ANSWER_MAX_BYTES."""


def _read_answer(response: requests.Response) -> None:
    """Reads the body of a `stream=True` response, decompressed, into the response (its json() and text use it).

    _AnswerTooLong once it passes PROVIDER_ANSWER_MAX_BYTES, before the rest reaches memory.
    """
    body = bytearray()
    for chunk in response.iter_content(chunk_size=16 * 1024):
        body += chunk
        if len(body) > PROVIDER_ANSWER_MAX_BYTES:
            raise _AnswerTooLong
    # What Response.content does, within the bound: requests keeps the body it read in _content.
    response._content = bytes(body)


def _require(provider: str, phone: str, *names: str) -> None:
    missing = [name for name in names if not getattr(settings, name)]
    if missing:
        raise _fail(provider, phone, f"set {' and '.join(missing)}")


class _SmsAeroGate(SmsAero):
    """The library's client, held to one gate URL from the settings and to a fractional timeout.

    As shipped it resolves the e-mail's domain in DNS on every construction (up to 15 s, outside any timeout
    of ours), insists on a whole timeout above 2 s, and on failure walks three gates in turn, switching from
    https to http only on the next one: a send could take several timeouts and no local server can stand in.
    """

    def __init__(self, *, email: str, api_key: str, sign: str, gate_url: str, timeout: float):
        self._email, self._api_key = email, api_key
        self._gate_url = gate_url if gate_url.endswith("/") else f"{gate_url}/"
        self._session, self._timeout = requests.Session(), timeout
        super().__init__(email, api_key, signature=sign, timeout=timeout)

    @staticmethod
    def init_validate(email, api_key, *args, **kwargs) -> None:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"SMSAERO_EMAIL is not an e-mail address: {exc}") from exc

    def get_gate_urls(self) -> list[str]:
        return [self._gate_url]

    def close(self) -> None:
        self._session.close()

    def request(self, selector: str, data: dict | None = None, page: int | None = None, proto: str = "https"):
        # The library's own follows redirects (re-posting the message each time, up to 30) and reads
        # the body of any status: one POST here, and only a 2xx answer can be a success.
        url = self.build_url(proto, selector, self._gate_url, page)
        try:
            response = self._session.post(
                url, json=data or {}, timeout=self._timeout, allow_redirects=False, stream=True
            )
        except requests.Timeout as exc:
            raise SmsAeroConnectionException(f"no answer within {self._timeout} s") from exc
        except requests.RequestException as exc:
            # The gate's URL, not the request's: that one carries the credentials.
            raise SmsAeroConnectionException(f"cannot connect to {self._gate_url} ({type(exc).__name__})") from exc
        except ValueError as exc:
            # requests writes Basic auth in Latin-1 (UnicodeEncodeError); the accounts.E010 check refuses such
            # credentials at start-up. The exception's own text is not passed on: it may quote a credential.
            names = "SMSAERO_EMAIL and SMSAERO_API_KEY"
            raise ValueError(f"cannot build the request ({type(exc).__name__}): are {names} printable ASCII?") from exc
        with response:
            if not 200 <= response.status_code < 300:
                raise SmsAeroException(f"answered HTTP {response.status_code}")
            try:
                _read_answer(response)
            except requests.RequestException as exc:  # a read timeout too: requests makes it a ConnectionError here
                raise SmsAeroConnectionException(f"broke off its answer ({type(exc).__name__})") from exc
        return self.check_response(response)

    def build_url(self, proto: str, selector: str, gate: str, page: int | None = None) -> str:
        # The credentials go in the URL as the library does; requests turns them into Basic auth.
        parts = urlsplit(gate)
        credentials = f"{quote(self._email, safe='')}:{quote(self._api_key, safe='')}"
        base = urlunsplit(parts._replace(netloc=f"{credentials}@{parts.netloc}"))
        url = urljoin(base, selector)
        return urljoin(url, f"?page={int(page)}") if page else url


class ProviderBackend(BaseBackend):
    """A provider's HTTP API: `deliver` sends and checks the answer, `send` gives it SMS_TIMEOUT in all."""

    provider = ""
    required_settings: tuple[str, ...] = ()
    # Those sent in an HTTP header: the accounts.E010 check holds them to printable ASCII.
    credential_settings: tuple[str, ...] = ()

    def send(self, *, phone: str, text: str) -> None:
        _require(self.provider, phone, *self.required_settings)
        message_id = _within_sms_timeout(self.provider, phone, lambda: self.deliver(phone=phone, text=text))
        logged_id = _escaped(message_id[:LOGGED_MESSAGE_ID_MAX_CHARS])
        logger.info("SMS to %s accepted by %s as %s", mask_phone(phone), self.provider, logged_id)

    def deliver(self, *, phone: str, text: str) -> str:
        """The provider's id of the accepted message, or SmsDeliveryError."""
        raise NotImplementedError


class SmsAeroBackend(ProviderBackend):
    provider = "SMS Aero"
    required_settings = ("SMSAERO_EMAIL", "SMSAERO_API_KEY", "SMSAERO_URL")
    credential_settings = ("SMSAERO_EMAIL", "SMSAERO_API_KEY")

    def deliver(self, *, phone: str, text: str) -> str:
        try:
            client = _SmsAeroGate(
                email=settings.SMSAERO_EMAIL,
                api_key=settings.SMSAERO_API_KEY,
                sign=settings.SMSAERO_SIGN,
                gate_url=settings.SMSAERO_URL,
                timeout=settings.SMS_TIMEOUT,
            )
            try:
                answer = client.send_sms(number=int(phone.lstrip("+")), text=text)
            finally:
                client.close()
        except _AnswerTooLong as exc:
            raise _fail(self.provider, phone, f"answered more than {PROVIDER_ANSWER_MAX_BYTES} bytes") from exc
        except SmsAeroNoMoneyException as exc:
            raise _fail(self.provider, phone, "no money on the account") from exc
        except SmsAeroConnectionException as exc:
            # Ours (_SmsAeroGate) say what failed; the library's own carry no text.
            reason = str(exc) or f"no usable answer from {settings.SMSAERO_URL}"
            raise _fail(self.provider, phone, reason) from exc
        except SmsAeroException as exc:
            raise _fail(self.provider, phone, f"refused: {str(exc)[:200]}") from exc
        except (ValueError, TypeError) as exc:
            # The library's own checks of the number, text and signature, ours of the e-mail, and a
            # request that cannot be built from the credentials.
            raise _fail(self.provider, phone, f"invalid request: {str(exc)[:200]}") from exc
        except (AttributeError, KeyError, RecursionError) as exc:
            # The library reads the answer assuming a JSON object with the keys it expects (and
            # json's parser gives up on deep nesting with RecursionError).
            raise _fail(self.provider, phone, "unexpected answer") from exc
        message_id = _message_id(answer.get("id") if isinstance(answer, dict) else None)
        if message_id is None:
            raise _fail(self.provider, phone, "answered success without the message's id")
        return message_id


class ExolveBackend(ProviderBackend):
    provider = "Exolve"
    required_settings = ("EXOLVE_API_KEY", "EXOLVE_SENDER", "EXOLVE_URL")
    credential_settings = ("EXOLVE_API_KEY",)

    def deliver(self, *, phone: str, text: str) -> str:
        url = f"{settings.EXOLVE_URL.rstrip('/')}/messaging/v1/SendSMS"
        try:
            response = requests.post(
                url,
                json={"number": settings.EXOLVE_SENDER, "destination": phone.lstrip("+"), "text": text},
                headers={"Authorization": f"Bearer {settings.EXOLVE_API_KEY}"},
                timeout=settings.SMS_TIMEOUT,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            raise _fail(self.provider, phone, f"no answer within {settings.SMS_TIMEOUT} s") from exc
        except requests.RequestException as exc:
            raise _fail(self.provider, phone, f"cannot connect to {url} ({type(exc).__name__})") from exc
        except ValueError as exc:
            # http.client writes headers in Latin-1 (UnicodeEncodeError); the accounts.E010 check refuses such
            # a key at start-up. The exception's own text is not logged: it may quote the header, key and all.
            reason = f"cannot build the request ({type(exc).__name__}): is EXOLVE_API_KEY printable ASCII?"
            raise _fail(self.provider, phone, reason) from exc
        with response:
            if not 200 <= response.status_code < 300:
                raise _fail(self.provider, phone, f"answered HTTP {response.status_code}")
            try:
                _read_answer(response)
            except _AnswerTooLong as exc:
                raise _fail(self.provider, phone, f"answered more than {PROVIDER_ANSWER_MAX_BYTES} bytes") from exc
            except requests.RequestException as exc:  # a read timeout too: requests makes it a ConnectionError here
                raise _fail(self.provider, phone, f"broke off its answer ({type(exc).__name__})") from exc
        try:
            message_id = _message_id(response.json()["message_id"])
        except (ValueError, TypeError, KeyError, RecursionError):  # RecursionError: JSON nested too deep
            message_id = None
        if message_id is None:
            raise _fail(self.provider, phone, f"answered HTTP {response.status_code} without a message_id")
        return message_id


def _message_id(value: object) -> str | None:
    """A provider's id for the accepted message: text or a number; anything else means no id."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)
