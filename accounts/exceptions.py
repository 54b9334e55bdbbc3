from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException

from project.throttling import RequestsThrottled


class PhoneRegionNotAllowed(APIException):
    status_code = 400
    default_detail = _("Codes cannot be sent to phone numbers of this country.")
    default_code = "phone_region_not_allowed"


class PhoneCannotReceiveSms(APIException):
    status_code = 400
    default_detail = _(
        "Codes are not sent to numbers of this kind: toll-free, premium-rate, shared-cost, voicemail and the like."
    )
    default_code = "phone_cannot_receive_sms"


class InvalidCode(APIException):
    status_code = 400
    default_detail = _("The code is wrong.")
    default_code = "invalid_code"


class CodeExpired(APIException):
    status_code = 400
    default_detail = _("The code has expired, was used up or was never sent. Request a new one.")
    default_code = "code_expired"


class SmsDeliveryFailed(APIException):
    status_code = 503
    default_detail = _("The SMS could not be sent. Please try again shortly.")
    default_code = "sms_delivery_failed"


class AccountDisabled(APIException):
    status_code = 403
    default_detail = _("This account is disabled.")
    default_code = "account_disabled"


class PhoneLocked(RequestsThrottled):
    default_reason = _("Too many wrong codes for this phone.")


class CodeSentRecently(RequestsThrottled):
    default_reason = _("A code was just sent to this phone.")


class PhoneSendLimitReached(RequestsThrottled):
    default_reason = _("Too many codes were sent to this phone.")


class SendBudgetExhausted(RequestsThrottled):
    default_reason = _("Too many codes are being sent right now.")
